#!/bin/sh
# sluiced_check.sh SLUICED SRCROOT - sluiced refuses bad start-up input the
# Postfix way: exit status 1 and one "sluiced: fatal: FILE: [section] key:
# reason" line; good input passes --check. No EAL is started.
set -u
sluiced=$1
root=$2
tmp=$(mktemp -d /tmp/sluiced-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0

# expect NAME STATUS STDERR-LINE ARGS...
expect() {
	name=$1 want_rc=$2 want=$3
	shift 3
	"$sluiced" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" != "$want_rc" ] || ! grep -qxF -- "$want" "$tmp/err"; then
		echo "FAIL $name: exit $rc (want $want_rc)"
		echo "  want: $want"
		sed 's/^/  got:  /' "$tmp/err"
		fails=$((fails + 1))
	else
		echo "ok   $name"
	fi
}

printf '[interface]\naddress = 10.0.0.300/24\n' > "$tmp/bad-addr.conf"
expect "bad address" 1 \
  "sluiced: fatal: $tmp/bad-addr.conf: [interface] address: \"10.0.0.300/24\" is not an IPv4 address/prefix" \
  --check -c "$tmp/bad-addr.conf"

printf '[interface]\naddress = 10.0.0.1/24\n[servces]\necho = yes\n' > "$tmp/typo.conf"
expect "typo in section" 1 \
  "sluiced: fatal: $tmp/typo.conf: [servces]: unknown section (known: [sluice] [eal] [lcores] [interface] [pools] [tcp] [services] [reactor] [control] [smtp] [storage] [tls] [delivery] [ldap])" \
  --check -c "$tmp/typo.conf"

expect "missing file" 1 \
  "sluiced: fatal: $tmp/none.conf: cannot open: No such file or directory" \
  --check -c "$tmp/none.conf"

printf '[device]\ntype = vdev\nvdev = net_tap0\n[queues]\nrx = 0\n' > "$tmp/badprof.conf"
printf '[sluice]\nnic_profile = %s\n[interface]\naddress = 10.0.0.1/24\n' "$tmp/badprof.conf" > "$tmp/uses-badprof.conf"
expect "bad profile" 1 \
  "sluiced: fatal: $tmp/badprof.conf: [queues] rx: \"0\" is not \"auto\" or a count in 1..128 (from $tmp/uses-badprof.conf: [sluice] nic_profile)" \
  --check -c "$tmp/uses-badprof.conf"

printf '[sluice]\nnic_profile = nosuch\n[interface]\naddress = 10.0.0.1/24\n' > "$tmp/noprof.conf"
expect "missing profile" 1 \
  "sluiced: fatal: $root/nic-profiles/nosuch.conf: cannot open: No such file or directory (from $tmp/noprof.conf: [sluice] nic_profile)" \
  --check -c "$tmp/noprof.conf"

printf '[lcores]\nmain = 0\nio = 1000\n[interface]\naddress = 10.0.0.1/24\n' > "$tmp/cpu.conf"
"$sluiced" --check -c "$tmp/cpu.conf" >/dev/null 2>"$tmp/err"
if [ $? = 1 ] && grep -q "^sluiced: fatal: $tmp/cpu.conf: \[lcores\] io: CPU 1000 is not available to this process" "$tmp/err"; then
	echo "ok   lcore that does not exist"
else
	echo "FAIL lcore that does not exist"; cat "$tmp/err"; fails=$((fails + 1))
fi

# the shipped lab config passes and builds the expected EAL line
if "$sluiced" --check --no-huge -c "$root/tests/lab.conf" >"$tmp/out" 2>"$tmp/err" &&
   grep -q "^EAL: sluiced -l 0,1 --main-lcore 0 --file-prefix sluice-lab --no-huge -m 256 --no-pci --vdev net_tap0,iface=sl0$" "$tmp/out"; then
	echo "ok   lab.conf --check"
else
	echo "FAIL lab.conf --check"; cat "$tmp/out" "$tmp/err"; fails=$((fails + 1))
fi

"$sluiced" --bogus >/dev/null 2>&1
[ $? = 2 ] && echo "ok   unknown option exits 2" || { echo "FAIL unknown option"; fails=$((fails + 1)); }
"$sluiced" --help | grep -q "^usage: sluiced" && echo "ok   --help" || { echo "FAIL --help"; fails=$((fails + 1)); }

[ "$fails" = 0 ]
