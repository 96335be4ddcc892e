//! Diagnostic logs on stderr through `tracing`. `-v` shows our info lines, `-vv` debug,
//! `-vvv` trace; `IAM_KEYS_LOG` or `RUST_LOG` (a comma-separated `target=level` list) replaces
//! that choice. Nothing logged by this crate carries a secret; the SDK's own targets are
//! capped at debug (see `cap_sdk`): their trace level prints raw HTTP traffic.

use crate::settings::Env;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

pub fn init(verbose: u8, env: &Env) {
    let from_env = env
        .get("IAM_KEYS_LOG")
        .or_else(|| env.get("RUST_LOG"))
        .and_then(|s| s.parse::<Targets>().ok());
    let filter = match from_env {
        Some(targets) => cap_sdk(targets),
        None => {
            let ours = match verbose {
                0 => LevelFilter::OFF,
                1 => LevelFilter::INFO,
                2 => LevelFilter::DEBUG,
                _ => LevelFilter::TRACE,
            };
            let theirs = if verbose >= 3 {
                LevelFilter::DEBUG
            } else {
                LevelFilter::OFF
            };
            Targets::new()
                .with_target("iam_keys", ours)
                .with_default(theirs)
        }
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(true)
        .without_time();
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
}

/// Never let a user-supplied filter open the SDK's trace level; our own crate may trace.
fn cap_sdk(targets: Targets) -> Targets {
    let default = targets.default_level().unwrap_or(LevelFilter::OFF);
    let ours = targets
        .iter()
        .find(|(t, _)| *t == "iam_keys")
        .map(|(_, l)| l)
        .unwrap_or(default);
    let mut capped = Targets::new()
        .with_default(default.min(LevelFilter::DEBUG))
        .with_target("iam_keys", ours);
    for (target, level) in targets.iter().filter(|(t, _)| *t != "iam_keys") {
        capped = capped.with_target(target.to_string(), level.min(LevelFilter::DEBUG));
    }
    capped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_everywhere_is_capped_at_debug_except_for_this_crate() {
        let capped = cap_sdk("trace".parse().unwrap());
        assert!(capped.would_enable("iam_keys::rotation", &tracing::Level::TRACE));
        assert!(!capped.would_enable("aws_smithy_runtime::client", &tracing::Level::TRACE));
        assert!(capped.would_enable("aws_smithy_runtime::client", &tracing::Level::DEBUG));
        let explicit = cap_sdk("aws_sigv4=trace,hyper=trace".parse().unwrap());
        assert!(!explicit.would_enable("aws_sigv4", &tracing::Level::TRACE));
        assert!(!explicit.would_enable("hyper::proto", &tracing::Level::TRACE));
    }
}
