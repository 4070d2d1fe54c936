#!/bin/sh
# Makes the development PKI of a federation: a CA, a TLS certificate for the
# coordinator, one per administration (role node), one for an analyst and one
# for an admin, plus the coordinator's Ed25519 manifest-signing key pair.
# See certs/README.md for the list of files. Development only: the CA key is
# written next to the certificates it signs.
#
# usage: certs/make-dev-pki.sh [-f] [-b FEDCUSTOMS_BINARY] DIR CODE[,CODE...]
#   e.g. certs/make-dev-pki.sh -b build/bin/fedcustoms certs/dev EE,FI,LV
#   -f  replace an existing CA in DIR (every certificate it signed stops working)
#   -b  path of the fedcustoms binary (default: fedcustoms on PATH)
set -eu

binary=fedcustoms
force=
while getopts fb: opt; do
  case $opt in
    f) force=--force ;;
    b) binary=$OPTARG ;;
    *) sed -n '2,14p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ $# -ne 2 ]; then
  sed -n '2,14p' "$0" >&2
  exit 2
fi
dir=$1
admins=$2

if ! command -v "$binary" >/dev/null 2>&1; then
  echo "make-dev-pki.sh: cannot run '$binary'; build it (ninja -C build fedcustoms) or pass -b" >&2
  exit 1
fi

# shellcheck disable=SC2086  # $force is empty or one word
"$binary" certs init --dir "$dir" --admins "$admins" $force
echo "Development PKI in $dir. Private keys (*.key) are mode 0600: never commit them."
