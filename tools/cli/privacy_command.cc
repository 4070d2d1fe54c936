// fedcustoms privacy: the differential-privacy figures a data protection
// officer plans a federation with (common/privacy/rdp_accountant.h).
//   fedcustoms privacy epsilon --sampling-rate Q --noise-multiplier S --steps N --delta D
//                              [--orders tf-privacy|opacus] [--conversion classic|improved]
//                              [--json]
//   fedcustoms privacy noise --target-epsilon E --delta D --sampling-rate Q --epochs K
//                            [--orders …] [--conversion …] [--json]
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/privacy/rdp_accountant.h"
#include "tools/cli/command.h"

namespace fedcustoms::tools {

std::vector<Command> AddPrivacyCommands(CLI::App& app) {
  struct Options {
    double q = 0, sigma = 0, delta = 0, target_epsilon = 0, epochs = 0;
    uint64_t steps = 0;
    privacy::Orders orders = privacy::Orders::kOpacus;
    privacy::Conversion conversion = privacy::Conversion::kImproved;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  const std::map<std::string, privacy::Orders> orders = {
      {"opacus", privacy::Orders::kOpacus}, {"tf-privacy", privacy::Orders::kTfPrivacy}};
  const std::map<std::string, privacy::Conversion> conversions = {
      {"improved", privacy::Conversion::kImproved}, {"classic", privacy::Conversion::kClassic}};
  auto* group = app.add_subcommand("privacy", "differential-privacy figures (RDP accountant)");
  group->require_subcommand(1);
  auto common = [&](CLI::App* c) {
    c->add_option("--delta", o->delta, "delta of (epsilon, delta), per record")->required();
    c->add_option("--sampling-rate", o->q, "Poisson sampling rate q of each record per step")
        ->required();
    c->add_option("--orders", o->orders, "RDP orders: opacus (default) or tf-privacy")
        ->transform(CLI::CheckedTransformer(orders, CLI::ignore_case));
    c->add_option("--conversion", o->conversion, "RDP to (epsilon, delta): improved or classic")
        ->transform(CLI::CheckedTransformer(conversions, CLI::ignore_case));
    c->add_flag("--json", o->json, "print JSON");
  };

  auto* epsilon = group->add_subcommand("epsilon", "epsilon spent by N steps of DP-SGD");
  epsilon->add_option("--noise-multiplier", o->sigma, "sigma: noise std / clip norm")->required();
  epsilon->add_option("--steps", o->steps, "local steps in all rounds together")->required();
  common(epsilon);
  auto run_epsilon = [o] {
    auto spent = privacy::EpsilonOf(o->q, o->sigma, o->steps, o->delta, o->orders, o->conversion);
    if (!spent.ok()) return ExitCode(spent.status());
    if (o->json) {
      std::printf("%s\n", nlohmann::json({{"epsilon", spent->epsilon},
                                          {"delta", o->delta},
                                          {"order", spent->order},
                                          {"sampling_rate", o->q},
                                          {"noise_multiplier", o->sigma},
                                          {"steps", o->steps}})
                              .dump()
                              .c_str());
    } else {
      std::printf("epsilon %.6f at delta %g (best RDP order %g; q %g, sigma %g, %lu steps)\n",
                  spent->epsilon, o->delta, spent->order, o->q, o->sigma,
                  static_cast<unsigned long>(o->steps));
    }
    return 0;
  };

  auto* noise = group->add_subcommand("noise", "the noise multiplier for a target epsilon");
  noise->add_option("--target-epsilon", o->target_epsilon, "epsilon not to exceed")->required();
  noise->add_option("--epochs", o->epochs, "epochs; steps = int(epochs / q)")->required();
  common(noise);
  auto run_noise = [o] {
    if (!(o->epochs > 0) || !(o->q > 0 && o->q <= 1)) {
      return ExitCode(
          absl::InvalidArgumentError("--epochs must be > 0 and --sampling-rate in (0, 1]"));
    }
    const uint64_t steps = privacy::StepsForEpochs(o->epochs, o->q);
    auto sigma = privacy::NoiseMultiplierFor(o->target_epsilon, o->delta, o->q, steps, o->orders,
                                             o->conversion);
    if (!sigma.ok()) return ExitCode(sigma.status());
    auto spent = privacy::EpsilonOf(o->q, *sigma, steps, o->delta, o->orders, o->conversion);
    if (!spent.ok()) return ExitCode(spent.status());
    if (o->json) {
      std::printf("%s\n", nlohmann::json({{"noise_multiplier", *sigma},
                                          {"epsilon", spent->epsilon},
                                          {"target_epsilon", o->target_epsilon},
                                          {"delta", o->delta},
                                          {"sampling_rate", o->q},
                                          {"steps", steps}})
                              .dump()
                              .c_str());
    } else {
      std::printf("noise multiplier %.6f: epsilon %.6f <= %g at delta %g (q %g, %lu steps)\n",
                  *sigma, spent->epsilon, o->target_epsilon, o->delta, o->q,
                  static_cast<unsigned long>(steps));
    }
    return 0;
  };
  return {{epsilon, run_epsilon}, {noise, run_noise}};
}

}  // namespace fedcustoms::tools
