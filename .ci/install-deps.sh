#!/usr/bin/env bash
# Installs every build, test and benchmark dependency from Debian 12 packages.
# Run as root (CI) or through sudo; never prompts.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
# libopenblas0-openmp becomes libblas.so.3 (Debian alternatives) for LibTorch
# and NumPy alike, on the same OpenMP runtime as LibTorch: the risk MLP
# trains 2.8x faster than on the reference BLAS (bench/training_speed).
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build ccache pkg-config git openssl \
  libtorch-dev python3-torch python3-numpy python3-pycryptodome \
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
  libssl-dev libspdlog-dev libgtest-dev libgmock-dev libcli11-dev \
  libsqlite3-dev sqlite3 nlohmann-json3-dev libbenchmark-dev \
  libopencv-imgcodecs-dev libopencv-imgproc-dev zlib1g-dev dataset-fashion-mnist \
  libopenblas0-openmp clang libclang-rt-14-dev clang-format
# bench/real_tabular: the Lending Club table (R package modeldata, exported
# with Rscript) and scikit-learn's reference models.
$SUDO apt-get install -y -qq --no-install-recommends r-cran-modeldata python3-sklearn
