# apt-mirror.sh: sourced by fetch-kernels.sh and fetch-nfs-utils.sh.
#
# find_mirror prints the Debian archive URI the VM tests download packages
# from: TLSHD_VM_MIRROR if set, else the first non-security Debian archive
# URI of the host's own apt configuration (never a hard-coded host).
find_mirror() {
	local f uri
	if [ -n "${TLSHD_VM_MIRROR:-}" ]; then
		echo "$TLSHD_VM_MIRROR"
		return
	fi
	# deb822 sources: "URIs: <uri> [<uri>...]"
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		for uri in $(awk 'tolower($1) == "uris:" { $1 = ""; print }' "$f"); do
			case $uri in
			*security*|cdrom:*|file:*) continue ;;
			esac
			echo "$uri"
			return
		done
	done
	# one-line sources: "deb [options] <uri> <suite> <components>"
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		uri=$(sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
			awk '$1 == "deb" && $2 !~ /security|^cdrom:|^file:/ { print $2; exit }')
		if [ -n "$uri" ]; then
			echo "$uri"
			return
		fi
	done
	return 1
}
