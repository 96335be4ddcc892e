#!/usr/bin/env bash
# Windows check for iam-keys, on Linux: cross-build for x86_64-pc-windows-gnu, lint, run the
# unit tests under wine, and rotate a key with the .exe against a local moto server.
#
#   1. clippy for the Windows target with warnings denied (lib, binary and unit tests);
#   2. the unit tests (`cargo test --lib`), run by wine;
#   3. a smoke rotation: iam-keys.exe, under wine, finds a CRLF credentials file and a config
#      file through %USERPROFILE% (C:\users\<you>\.aws in a private wine prefix), runs
#      `status --all`, `rotate --all --yes`, `status --all`; botocore then authenticates with
#      the rewritten file as the same user with the new key, the old key is Inactive in
#      IAM, CRLF line ends and the other bytes are kept.
#
# How: Debian's rustc-web ships the standard library's source (rust-web-src), so cargo builds
# Windows' std from it (-Zbuild-std, allowed by RUSTC_BOOTSTRAP=1) and links with mingw-w64.
# Wine 8.0 lacks bcryptprimitives!ProcessPrng, which std calls for random bytes: a shim DLL
# (scripts/windows/processprng-shim.c, built here with mingw) beside each .exe provides it.
# Everything goes to target/windows (its own CARGO_TARGET_DIR and wine prefix); moto and
# botocore come from target/test-venv (run `cargo test` or scripts/demo.sh once to create it).
# Only 127.0.0.1 is contacted; nothing reads ~/.aws or your AWS_* variables.
#
# Needs (Debian 12 with bookworm-security): apt-get install rustc-web cargo-web rust-web-src
# rust-web-clippy mingw-w64 wine64. The first run compiles std and every dependency twice
# (checked for clippy, built for the tests and the .exe); later runs rebuild only iam-keys
# and take about a minute.
#
# Usage: scripts/windows-check.sh [--smoke-only]
#   --smoke-only  build the .exe and run only the smoke rotation (3.)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
target=x86_64-pc-windows-gnu
windows_dir=$root/target/windows
venv=$root/target/test-venv

say() { printf '\n==> %s\n' "$*"; }
die() { printf 'windows-check.sh: %s\n' "$*" >&2; exit 1; }

smoke_only=0
case "${1:-}" in
    "") ;;
    --smoke-only) smoke_only=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (try --help)" ;;
esac

# --- the toolchain: Debian's, not rustup's (rustup's has no std source for build-std here) ---
missing=()
[[ -x /usr/bin/rustc ]] || missing+=(rustc-web)
[[ -x /usr/bin/cargo ]] || missing+=(cargo-web)
[[ -x /usr/bin/cargo-clippy ]] || missing+=(rust-web-clippy)
command -v x86_64-w64-mingw32-gcc >/dev/null || missing+=(mingw-w64)
command -v wine >/dev/null || missing+=(wine64)
if ((${#missing[@]} == 0)); then
    sysroot=$(/usr/bin/rustc --print sysroot)
    [[ -f $sysroot/lib/rustlib/src/rust/library/std/Cargo.toml ]] || missing+=(rust-web-src)
fi
((${#missing[@]} == 0)) ||
    die "missing: ${missing[*]} (apt-get install ${missing[*]}; rustc-web 1.94.1 or newer comes from bookworm-security)"

export PATH=/usr/bin:$PATH
export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=$windows_dir
export CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0
unset RUSTC_WRAPPER RUSTC_WORKSPACE_WRAPPER RUSTFLAGS CARGO_BUILD_TARGET
# A private wine prefix, quiet, and our shim preferred over any built-in bcryptprimitives.
export WINEPREFIX=$windows_dir/wine-prefix WINEDEBUG=-all
export WINEDLLOVERRIDES="bcryptprimitives=n,b;mscoree,mshtml="
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
cargo=(/usr/bin/cargo)
build_flags=(--locked -Zbuild-std --target "$target")

rustc --version
wine --version

# --- 1. clippy ----------------------------------------------------------------------------
if ((!smoke_only)); then
    say "clippy for $target, warnings denied (lib, binary, unit tests)"
    "${cargo[@]}" clippy "${build_flags[@]}" --lib --bins --tests -- -D warnings
fi

# --- 2. the unit tests under wine ----------------------------------------------------------
say "Building the .exe and the unit tests for $target"
"${cargo[@]}" build "${build_flags[@]}" --lib --bins --tests
debug=$windows_dir/$target/debug
exe=$debug/iam-keys.exe
[[ -f $exe ]] || die "no $exe after the build"

say "The ProcessPrng shim DLL (wine 8.0 lacks bcryptprimitives!ProcessPrng)"
shim=$windows_dir/bcryptprimitives.dll
x86_64-w64-mingw32-gcc -shared -O2 -Wall -Werror -Wl,--kill-at \
    -o "$shim" "$root/scripts/windows/processprng-shim.c" -ladvapi32
cp "$shim" "$debug/" && cp "$shim" "$debug/deps/"

if [[ ! -f $WINEPREFIX/system.reg ]]; then
    say "Creating the wine prefix $WINEPREFIX"
    wine wineboot --init >/dev/null 2>&1 || true
    # wineboot returns before the wine server has written the registry: wait for it.
    wineserver -w >/dev/null 2>&1 || true
    [[ -f $WINEPREFIX/system.reg ]] || die "wineboot did not create $WINEPREFIX"
fi

if ((!smoke_only)); then
    say "The unit tests, under wine"
    # The protocol simulation's seeds are the same on every platform; a fifth of them under
    # wine keeps its file system work short.
    IAM_KEYS_SIM_SEEDS=200 "${cargo[@]}" test "${build_flags[@]}" --lib
fi

# --- 3. a smoke rotation against moto ------------------------------------------------------
say "A smoke rotation with iam-keys.exe against moto on 127.0.0.1"
[[ -x $venv/bin/moto_server && -x $venv/bin/python ]] ||
    die "no moto in $venv: run \`cargo test --locked\` or scripts/demo.sh once to create the venv"

work=$(mktemp -d "${TMPDIR:-/tmp}/iam-keys-windows.XXXXXX")
moto_pid=''
cleanup() {
    if [[ -n $moto_pid ]]; then
        kill "$moto_pid" 2>/dev/null || true
        wait "$moto_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

env -i PATH="$PATH" HOME="$work" LANG=C.UTF-8 \
    "$venv/bin/moto_server" -H 127.0.0.1 -p 0 >"$work/moto.log" 2>&1 &
moto_pid=$!
port=''
for _ in $(seq 1 300); do
    port=$(sed -n 's|.*Running on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$work/moto.log" | head -n 1)
    [[ -n $port ]] && break
    kill -0 "$moto_pid" 2>/dev/null || { cat "$work/moto.log" >&2; die "moto_server exited"; }
    sleep 0.1
done
[[ -n $port ]] || { cat "$work/moto.log" >&2; die "moto_server did not start within 30 s"; }
endpoint=http://127.0.0.1:$port
echo "moto on $endpoint"

# %USERPROFILE% under wine is C:\users\<unix user>: the files go there, as on Windows.
profile_dir=$(wine cmd /c 'echo %USERPROFILE%' 2>/dev/null | tr -d '\r')
[[ $profile_dir == 'C:\users\'* ]] || die "unexpected %USERPROFILE% under wine: $profile_dir"
aws_dir=$WINEPREFIX/drive_c/users/${profile_dir#'C:\users\'}/.aws
rm -rf "$aws_dir"
mkdir -p "$aws_dir"

# The sandbox account (auth checking on), a user with one key, CRLF files with two profiles
# sharing that key; the checks afterwards.
python_env=(env -i PATH="$venv/bin:/usr/bin:/bin" HOME="$work" LANG=C.UTF-8
    AWS_EC2_METADATA_DISABLED=true NO_PROXY=127.0.0.1)
"${python_env[@]}" "$venv/bin/python" - setup "$endpoint" "$aws_dir" "$work" <<'PY'
import json, sys, urllib.request
import boto3

_, endpoint, aws_dir, work = sys.argv[1:5]
def iam(k, s):
    return boto3.client("iam", region_name="us-east-1", endpoint_url=endpoint,
                        aws_access_key_id=k, aws_secret_access_key=s)
boot = iam("AKIAIOSFODNN7EXAMPLE", "bootstrap")
boot.create_user(UserName="admin")
boot.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
admin_key = boot.create_access_key(UserName="admin")["AccessKey"]
req = urllib.request.Request(endpoint + "/moto-api/reset-auth", data=b"0", method="POST",
                             headers={"Content-Type": "text/plain"})
urllib.request.urlopen(req, timeout=10).read()
admin = iam(admin_key["AccessKeyId"], admin_key["SecretAccessKey"])
admin.create_user(UserName="win-user")
admin.put_user_policy(UserName="win-user", PolicyName="self", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
        "iam:ListAccessKeys", "iam:CreateAccessKey", "iam:UpdateAccessKey",
        "iam:DeleteAccessKey", "iam:GetAccessKeyLastUsed", "iam:GetUser"]}]}))
key = admin.create_access_key(UserName="win-user")["AccessKey"]
pair = "aws_access_key_id = %s\r\naws_secret_access_key = %s\r\n" % (
    key["AccessKeyId"], key["SecretAccessKey"])
with open(aws_dir + "/credentials", "w", newline="") as f:
    f.write("# written by windows-check.sh\r\n[default]\r\n" + pair + "\r\n[ci]\r\n" + pair)
with open(aws_dir + "/config", "w", newline="") as f:
    f.write("[default]\r\nregion = us-east-1\r\n\r\n[profile ci]\r\nregion = us-east-1\r\n")
with open(work + "/state.json", "w") as f:
    json.dump({"old": key["AccessKeyId"], "admin": [admin_key["AccessKeyId"],
               admin_key["SecretAccessKey"]]}, f)
print("win-user has key %s...%s; files in %s" % (key["AccessKeyId"][:4], key["AccessKeyId"][-4:], aws_dir))
PY

# iam-keys.exe with only what a Windows user would have (wine adds USERPROFILE and the rest).
win() {
    env -i PATH=/usr/bin:/bin LANG=C.UTF-8 WINEPREFIX="$WINEPREFIX" WINEDEBUG=-all \
        WINEDLLOVERRIDES="$WINEDLLOVERRIDES" AWS_ENDPOINT_URL="$endpoint" \
        wine "$exe" "$@"
}
cp "$shim" "$(dirname "$exe")/"
echo '$ iam-keys.exe status --all'
win status --all
echo '$ iam-keys.exe rotate --all --yes'
win rotate --all --yes
echo '$ iam-keys.exe status --all'
win status --all

"${python_env[@]}" "$venv/bin/python" - check "$endpoint" "$aws_dir" "$work" <<'PY'
import json, sys
import boto3, botocore.session

_, endpoint, aws_dir, work = sys.argv[1:5]
state = json.load(open(work + "/state.json"))
raw = open(aws_dir + "/credentials", "rb").read()
assert b"\r\n" in raw and raw.count(b"\n") == raw.count(b"\r\n"), "CRLF line ends were not kept"
assert raw.startswith(b"# written by windows-check.sh\r\n[default]\r\n"), raw[:60]
assert state["old"].encode() not in raw, "the old key is still in the credentials file"
ids = set()
for profile in ("default", "ci"):
    session = botocore.session.Session(profile=profile)
    session.set_config_variable("credentials_file", aws_dir + "/credentials")
    session.set_config_variable("config_file", aws_dir + "/config")
    creds = session.get_credentials()
    sts = session.create_client("sts", region_name="us-east-1", endpoint_url=endpoint)
    arn = sts.get_caller_identity()["Arn"]
    assert arn.endswith(":user/win-user"), arn
    ids.add(creds.access_key)
assert len(ids) == 1 and state["old"] not in ids, ids
admin = boto3.client("iam", region_name="us-east-1", endpoint_url=endpoint,
                     aws_access_key_id=state["admin"][0], aws_secret_access_key=state["admin"][1])
keys = {k["AccessKeyId"]: k["Status"] for k in
        admin.list_access_keys(UserName="win-user")["AccessKeyMetadata"]}
new = ids.pop()
assert keys == {state["old"]: "Inactive", new: "Active"}, keys
print("botocore: profiles default and ci authenticate as win-user with the new key %s...%s; "
      "the old key is Inactive; CRLF kept" % (new[:4], new[-4:]))
PY
say "Windows check passed: clippy, unit tests under wine, smoke rotation"
