//! JSON log lines through `tracing`, the same for every function, the local run and the
//! operator's command. No AWS crate: the local run links it without the SDK.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;

/// JSON log lines on stdout (CloudWatch picks them up), level from `RUST_LOG` (default
/// `info`). No ANSI colours, no time stamps (Lambda stamps each line), the current span's
/// fields (the file reference) on every line.
pub fn init_tracing() {
    let filter = log_filter(&std::env::var("RUST_LOG").unwrap_or_default());
    let _ = tracing::subscriber::set_global_default(json_subscriber(filter, std::io::stdout));
}

/// Libraries whose debug and trace output carries request contents (S3 object keys with
/// file names, request bodies, raw Lambda events): whatever `RUST_LOG` asks, they log at
/// `warn` at most, so tenants' personal data never reaches a log line through them.
const CAPPED_TARGETS: [&str; 12] = [
    "aws_config",
    "aws_runtime",
    "aws_sdk_dynamodb",
    "aws_sdk_eventbridge",
    "aws_sdk_s3",
    "aws_smithy_runtime",
    "aws_smithy_http_client",
    "lambda_runtime",
    "lambda_http",
    "reqwest",
    "hyper_util",
    "h2",
];

/// The filter for a `RUST_LOG` value: `info`, `debug`, `warn,oncall_domain=debug`, … (a
/// level, and `target=level` directives; an unreadable value means `info`), with the
/// capped libraries at `warn` at most. Parsed without regular expressions (`Targets`,
/// not `EnvFilter`): a smaller binary and a faster start.
pub fn log_filter(spec: &str) -> Targets {
    let parsed: Targets = spec
        .trim()
        .parse()
        .ok()
        .filter(|_| !spec.trim().is_empty())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO));
    let default = parsed.default_level().unwrap_or(LevelFilter::OFF);
    let cap = |level: LevelFilter| level.min(LevelFilter::WARN);
    let mut filter = Targets::new().with_default(default);
    for (target, level) in parsed.iter() {
        let capped = CAPPED_TARGETS
            .iter()
            .any(|capped| target == *capped || target.starts_with(&format!("{capped}::")));
        filter = filter.with_target(target, if capped { cap(level) } else { level });
    }
    for target in CAPPED_TARGETS {
        if !parsed.iter().any(|(named, _)| named == target) {
            filter = filter.with_target(target, cap(default));
        }
    }
    filter
}

/// The JSON subscriber every function uses, writing to `writer` (tests capture it to
/// check that no personal data reaches a log line).
pub fn json_subscriber<W>(filter: Targets, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .without_time()
        .with_writer(writer)
        .with_max_level(LevelFilter::TRACE)
        .finish()
        .with(filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn enabled(filter: &Targets, target: &str, level: Level) -> bool {
        filter.would_enable(target, &level)
    }

    #[test]
    fn rust_log_levels_with_the_chatty_libraries_capped() {
        let info = log_filter("");
        assert!(enabled(&info, "oncall_domain::intake", Level::INFO));
        assert!(!enabled(&info, "oncall_domain::intake", Level::DEBUG));
        assert!(enabled(&info, "aws_sdk_s3", Level::WARN));
        assert!(!enabled(&info, "aws_sdk_s3::operation", Level::INFO));

        let debug = log_filter("debug,aws_sdk_s3=trace,reqwest::connect=debug");
        assert!(enabled(&debug, "oncall_domain", Level::DEBUG));
        assert!(!enabled(&debug, "aws_sdk_s3", Level::DEBUG), "capped");
        assert!(!enabled(&debug, "reqwest::connect", Level::DEBUG), "capped");
        assert!(!enabled(&debug, "lambda_runtime", Level::INFO), "capped");
        assert!(enabled(&debug, "lambda_runtime", Level::WARN));

        let garbage = log_filter("=!?");
        assert!(enabled(&garbage, "oncall_domain", Level::INFO));
        assert!(!enabled(&garbage, "oncall_domain", Level::DEBUG));
        let quiet = log_filter("error");
        assert!(!enabled(&quiet, "oncall_domain", Level::WARN));
    }
}
