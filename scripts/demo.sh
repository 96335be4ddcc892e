#!/usr/bin/env bash
# iam-keys demo: see the tool rotate a key with no AWS account.
#
# Uses the iam-keys on PATH when it is this version (what `cargo install --path .` put
# there), otherwise builds it into this repository's target/ (CARGO_TARGET_DIR if set), so a
# newcomer who ran the README's two commands builds once. Then it starts a local moto IAM/STS
# server on 127.0.0.1 with authentication checking on, creates a sandbox IAM user `demo-user`
# with one access key, writes profile files into a temporary directory (two profiles sharing
# that key, one SSO profile), and runs `iam-keys status`, `rotate --dry-run`, `rotate`, and
# `status` again, then proves the rewritten files work with the AWS CLI.
#
# It never reads or writes ~/.aws, ignores your AWS_* variables, sends nothing beyond
# 127.0.0.1, and never prints a secret (key ids are shown masked). Everything is removed at
# the end. The Python tools come from <target dir>/test-venv, the venv the integration tests
# use (same pinned tests/requirements.txt, same marker file, same lock), created on first use.
#
# Usage: scripts/demo.sh [--installed | --build]
#   --installed  use the iam-keys on PATH, whatever its version (fail if there is none)
#   --build      build into target/ even when this version is installed
set -euo pipefail

usage() {
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
}

mode=auto
case "${1:-}" in
    "") ;;
    --installed) mode=installed ;;
    --build) mode=build ;;
    -h | --help) usage; exit 0 ;;
    *) echo "demo.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-target}
case "$target_dir" in /*) ;; *) target_dir=$root/$target_dir ;; esac
venv=$target_dir/test-venv
requirements=$root/tests/requirements.txt
marker=$venv/.requirements.txt

if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then
    bold=$'\e[1m' dim=$'\e[2m' reset=$'\e[0m'
else
    bold='' dim='' reset=''
fi
say() { printf '\n%s==> %s%s\n' "$bold" "$*" "$reset"; }
note() { printf '%s    %s%s\n' "$dim" "$*" "$reset"; }
die() { printf 'demo.sh: %s\n' "$*" >&2; exit 1; }

# --- the tool -------------------------------------------------------------------------------
# This checkout's version, from Cargo.toml's [package] section.
version=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)
bin=''
if [[ $mode != build ]]; then
    if installed_bin=$(command -v iam-keys); then
        installed_version=$("$installed_bin" --version 2>/dev/null || true)
        if [[ $mode == installed || "$installed_version" == "iam-keys $version" ]]; then
            bin=$installed_bin
            say "Using the installed $installed_version: $bin"
        else
            say "The iam-keys on PATH ($installed_bin) is ${installed_version:-unusable}, not $version: building this checkout"
        fi
    elif [[ $mode == installed ]]; then
        die "--installed: no iam-keys on PATH (cargo install --path .)"
    fi
fi
if [[ -z "$bin" ]]; then
    say "Building iam-keys $version into $target_dir (cargo build --release --locked)"
    command -v cargo >/dev/null || die "cargo not found: install Rust from rustup.rs, or use --installed"
    (cd "$root" && CARGO_TARGET_DIR=$target_dir cargo build --release --locked --bin iam-keys)
    bin=$target_dir/release/iam-keys
fi
[[ -x "$bin" ]] || die "no executable at $bin"

# --- the Python venv (moto, the AWS CLI), shared with the integration tests -----------------
command -v python3 >/dev/null ||
    die "python3 not found: install Python 3.10+ with venv (Debian/Ubuntu: apt-get install python3 python3-venv)"
mkdir -p "$target_dir"
exec 9>"$target_dir/test-venv.lock"
flock 9 # the tests take the same lock: one installer at a time
if ! cmp -s "$requirements" "$marker" || [[ ! -x "$venv/bin/python" ]]; then
    say "Installing moto and the AWS CLI into $venv (about a minute, once)"
    rm -f "$marker"
    python3 -m venv --clear "$venv" ||
        die "python3 -m venv failed (Debian/Ubuntu: apt-get install python3-venv)"
    "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$requirements" ||
        die "pip install -r $requirements failed: check access to PyPI, then rerun"
    cp "$requirements" "$marker.tmp" && mv "$marker.tmp" "$marker" # written last
fi
exec 9>&- # release the lock

# --- a private work dir, and cleanup --------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/iam-keys-demo.XXXXXX")
chmod 700 "$work"
moto_pid=''
cleanup() {
    if [[ -n "$moto_pid" ]]; then
        kill "$moto_pid" 2>/dev/null || true
        wait "$moto_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -m 700 "$work/home" "$work/home/.aws"
credentials=$work/home/.aws/credentials
config=$work/home/.aws/config

# Every program runs with this environment only: none of your AWS_* variables, no ~/.aws.
sandboxed() {
    env -i \
        HOME="$work/home" PATH="$venv/bin:$PATH" LANG=C.UTF-8 TERM="${TERM:-dumb}" \
        ${NO_COLOR:+NO_COLOR="$NO_COLOR"} \
        AWS_SHARED_CREDENTIALS_FILE="$credentials" AWS_CONFIG_FILE="$config" \
        AWS_ENDPOINT_URL="${endpoint:-}" AWS_EC2_METADATA_DISABLED=true \
        NO_PROXY=127.0.0.1,localhost \
        "$@"
}

# --- moto, on a free port of 127.0.0.1 -----------------------------------------------------
say "Starting a local IAM/STS (moto) on 127.0.0.1"
env -i PATH="$PATH" HOME="$work" LANG=C.UTF-8 \
    "$venv/bin/moto_server" -H 127.0.0.1 -p 0 >"$work/moto.log" 2>&1 &
moto_pid=$!
port=''
for _ in $(seq 1 300); do
    port=$(sed -n 's|.*Running on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$work/moto.log" | head -n 1)
    [[ -n "$port" ]] && break
    kill -0 "$moto_pid" 2>/dev/null || { cat "$work/moto.log" >&2; die "moto_server exited"; }
    sleep 0.1
done
[[ -n "$port" ]] || { cat "$work/moto.log" >&2; die "moto_server did not start within 30 s"; }
endpoint=http://127.0.0.1:$port
note "moto listens on $endpoint"

# --- the sandbox account: an admin, auth checking on, demo-user and its key, the files -------
say "Creating the sandbox user demo-user with one access key, and its profile files"
sandboxed "$venv/bin/python" - "$endpoint" "$credentials" "$config" "$work/admin-credentials" <<'PY'
import json, os, sys, urllib.request
import boto3

endpoint, credentials, config, admin_file = sys.argv[1:5]

def iam(key_id, secret):
    return boto3.client("iam", region_name="us-east-1", endpoint_url=endpoint,
                        aws_access_key_id=key_id, aws_secret_access_key=secret)

def private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)

# Checking is off at start: make an admin, then switch checking on.
boot = iam("AKIAIOSFODNN7EXAMPLE", "bootstrap")
boot.create_user(UserName="admin")
boot.put_user_policy(UserName="admin", PolicyName="admin-all", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
admin_key = boot.create_access_key(UserName="admin")["AccessKey"]
req = urllib.request.Request(endpoint + "/moto-api/reset-auth", data=b"0", method="POST",
                             headers={"Content-Type": "text/plain"})
with urllib.request.urlopen(req, timeout=10) as r:
    assert r.status == 200, r.status
admin = iam(admin_key["AccessKeyId"], admin_key["SecretAccessKey"])
private(admin_file, "[admin]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
        % (admin_key["AccessKeyId"], admin_key["SecretAccessKey"]))

# demo-user may manage its own keys (moto matches policies on Resource "*" only).
admin.create_user(UserName="demo-user")
admin.put_user_policy(UserName="demo-user", PolicyName="self-service", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
        "iam:ListAccessKeys", "iam:CreateAccessKey", "iam:UpdateAccessKey",
        "iam:DeleteAccessKey", "iam:GetAccessKeyLastUsed", "iam:GetUser",
        "iam:ListMFADevices"]}]}))
key = admin.create_access_key(UserName="demo-user")["AccessKey"]
pair = "aws_access_key_id = %s\naws_secret_access_key = %s\n" % (
    key["AccessKeyId"], key["SecretAccessKey"])
private(credentials, "# written by scripts/demo.sh\n[dev]\n" + pair + "\n[ci]\n" + pair)
private(config, """# written by scripts/demo.sh
[profile dev]
region = us-east-1

[profile ci]
region = us-east-1
output = json

[profile demo-sso]
sso_start_url = https://example.awsapps.com/start
sso_region = us-east-1
sso_account_id = 123456789012
sso_role_name = ReadOnly
region = us-east-1
""")
PY

# Key ids, masked (AKIA…WXYZ); secrets are never shown.
masked_ids() {
    sed -n 's/^[[:space:]]*aws_access_key_id[[:space:]]*=[[:space:]]*\(....\).*\(....\)[[:space:]]*$/\1…\2/p' "$1"
}
show_files() {
    note "$(grep -c '^\[' "$credentials") profiles in the credentials file, $(grep -c '^\[' "$config") in the config file"
    note "key ids in the credentials file: $(masked_ids "$credentials" | sort | uniq -c | sed 's/^ *//' | paste -sd, - | sed 's/,/, /g')"
}
show_iam_keys() {
    local keys
    keys=$(sandboxed env AWS_SHARED_CREDENTIALS_FILE="$work/admin-credentials" \
        aws iam list-access-keys --user-name demo-user --profile admin --region us-east-1 \
        --query 'AccessKeyMetadata[].[AccessKeyId,Status]' --output text)
    note "demo-user's keys in IAM:"
    while read -r id status; do
        [[ -n "$id" ]] && note "  ${id:0:4}…${id: -4}  $status"
    done <<<"$keys"
}
show_files
show_iam_keys
note "files: $work/home/.aws/{credentials,config} (removed at the end)"

key_ids() { sed -n 's/^[[:space:]]*aws_access_key_id[[:space:]]*=[[:space:]]*\([A-Z0-9]*\).*/\1/p' "$credentials" | sort -u; }
fingerprint() { cat "$credentials" "$config" | sha256sum | cut -d' ' -f1; }
old_key=$(key_ids)

failures=0
step() {
    say "$1"
    shift
    printf '%s    $ %s%s\n' "$dim" "$*" "$reset"
    local rc=0
    sandboxed "$@" || rc=$?
    if ((rc != 0)); then
        note "(exit code $rc)"
        failures=$((failures + 1))
    fi
}
iam_keys() { step "$1" "$bin" "${@:2}"; }

iam_keys "Status of every profile: dev and ci share one key; demo-sso is not a static key" \
    status --all
before=$(fingerprint)
iam_keys "The plan, with every AWS read and no change (--dry-run)" \
    rotate --all --dry-run
if [[ "$(fingerprint)" == "$before" ]]; then
    note "both files are byte-for-byte unchanged by --dry-run"
else
    note "the files changed during --dry-run!"
    failures=$((failures + 1))
fi
iam_keys "Rotate: create a new key, prove it works, write both profiles, deactivate the old key" \
    rotate --all --yes
show_files
show_iam_keys
iam_keys "Status after the rotation" \
    status --all
step "The AWS CLI authenticates with the rewritten file (profile dev)" \
    aws sts get-caller-identity --profile dev
step "... and with profile ci" \
    aws sts get-caller-identity --profile ci

# The outcome, from the files and from IAM (not from what the tool said).
new_key=$(key_ids)
old_status=$(sandboxed env AWS_SHARED_CREDENTIALS_FILE="$work/admin-credentials" \
    aws iam list-access-keys --user-name demo-user --profile admin --region us-east-1 \
    --query "AccessKeyMetadata[?AccessKeyId=='$old_key'].Status" --output text)
if [[ "$new_key" != "$old_key" && $(wc -l <<<"$new_key") -eq 1 && "$old_status" == Inactive ]]; then
    say "Done: dev and ci now share the new key ${new_key:0:4}…${new_key: -4}; the old key ${old_key:0:4}…${old_key: -4} is Inactive."
else
    say "Unexpected outcome: the files hold $(wc -l <<<"$new_key") key id(s) ($( [[ "$new_key" == "$old_key" ]] && echo "still the old key" || echo "changed")), old key status: ${old_status:-gone}"
    failures=$((failures + 1))
fi
if ((failures)); then
    say "The demo had $failures problem(s) (see above)."
    exit 1
fi
