#!/bin/bash
# install-deps.sh: install every Debian 12 package needed to build tlshd,
# run its tests and boot the VM test suite.  Run as root.
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "install-deps: must run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive

# Build: compiler, autotools, pkg-config and the libraries tlshd links.
# VM tests: QEMU (TCG), busybox-static for the guest userland, kmod (depmod),
# cpio/xz-utils/zstd to (un)pack kernels and the initramfs, keyutils (keyctl
# in the guest), debian-archive-keyring to verify the kernel packages.
# Host TLS peers: gnutls-bin (certtool, gnutls-serv, gnutls-cli, p11tool) and
# openssl; softhsm2, a PKCS#11 token for the key URL case.
# systemd: systemd-analyze checks the unit.
# mmdebstrap and e2fsprogs (mke2fs -d): the Debian 13 and testing user
# spaces of the distro VM suite and their disk images.
# clang and its runtime (ASan, UBSan, libFuzzer): the sanitizer build and
# the fuzz targets. debhelper, lintian, fakeroot: the Debian package test.
apt-get update
apt-get install -y --no-install-recommends \
	build-essential autoconf automake libtool pkg-config \
	libgnutls28-dev libnl-genl-3-dev libkeyutils-dev libglib2.0-dev libsystemd-dev \
	qemu-system-x86 busybox-static kmod cpio xz-utils zstd keyutils debian-archive-keyring \
	gnutls-bin openssl softhsm2 systemd clang libclang-rt-14-dev \
	debhelper lintian fakeroot mmdebstrap e2fsprogs
