// The node's retry policy: one test per class, and a real diverging training
// (a NaN loss on synthetic declarations) that the node sits out instead of
// retrying until the round's deadline.
#include "node/backoff/status_class.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "node/learner/local_learner.h"
#include "tests/support/synthetic_learner.h"

namespace fedcustoms::node {
namespace {

TEST(StatusClass, OkIsOk) { EXPECT_EQ(Classify(absl::OkStatus()), StatusClass::kOk); }

TEST(StatusClass, TransportAndCoordinatorHiccupsAreRetried) {
  for (const absl::Status& s :
       {absl::UnavailableError("connection refused"), absl::DeadlineExceededError("slow"),
        absl::CancelledError("stream watchdog"), absl::AbortedError("upload in progress"),
        absl::InternalError("RST_STREAM"), absl::UnknownError("TLS record cut")}) {
    EXPECT_EQ(Classify(s), StatusClass::kRetry) << s;
  }
}

TEST(StatusClass, RefusedStepsAreSatOut) {
  for (const absl::Status& s :
       {absl::FailedPreconditionError("round 4 is closed"),
        absl::InvalidArgumentError("update rejected"), absl::AlreadyExistsError("duplicate"),
        absl::ResourceExhaustedError("too large"), absl::NotFoundError("no such version"),
        absl::OutOfRangeError("chunk index"), absl::DataLossError("hash mismatch"),
        absl::UnimplementedError("old coordinator")}) {
    EXPECT_EQ(Classify(s), StatusClass::kSitOut) << s;
  }
}

TEST(StatusClass, CredentialsAreFatal) {
  EXPECT_EQ(Classify(absl::PermissionDeniedError("forged manifest")), StatusClass::kFatal);
  EXPECT_EQ(Classify(absl::UnauthenticatedError("certificate revoked")), StatusClass::kFatal);
}

TEST(StatusClass, LocalTrainingFailureIsSatOutWhateverTheLearnersCode) {
  const absl::Status reported = LocalTrainingFailure(absl::InternalError("out of memory"));
  EXPECT_EQ(Classify(reported), StatusClass::kSitOut);
  EXPECT_EQ(reported.message(), "local training failed: out of memory");
}

// A real learner on synthetic declarations, given a global model whose output
// bias is NaN: the loss is NaN at the first step, and what the node reports
// is sat out, never retried.
TEST(StatusClass, NanLossOfARealLearnerIsNotRetried) {
  auto made = testing_support::MakeSyntheticLearner("status-class", v1::TASK_RISK, 2000);
  ASSERT_TRUE(made.ok()) << made.status();
  auto& learner = made->learner;
  const task::ModelSpec& spec = made->spec;
  auto global = task::InitialState(spec, 7);
  ASSERT_TRUE(global.ok()) << global.status();
  int poisoned = 0;
  for (auto& [name, t] : *global) {
    if (name == "output.bias") {
      t.fill_(std::numeric_limits<float>::quiet_NaN());
      ++poisoned;
    }
  }
  ASSERT_EQ(poisoned, 1);
  v1::TrainingConfig training;
  training.set_local_epochs(1);
  training.set_batch_size(256);
  training.set_learning_rate(0.01);
  training.set_optimizer("adam");
  training.set_max_positive_weight(30);
  training.set_seed(1);
  auto trained = learner->Train(spec, *std::move(global), training, /*dp=*/nullptr);
  ASSERT_FALSE(trained.ok());
  EXPECT_NE(trained.status().message().find("loss is nan"), std::string::npos) << trained.status();
  EXPECT_EQ(Classify(LocalTrainingFailure(trained.status())), StatusClass::kSitOut);
}

}  // namespace
}  // namespace fedcustoms::node
