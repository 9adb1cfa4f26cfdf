//! The `userprofiles` binary: parse configuration, start both listeners, run until SIGTERM/SIGINT.

use clap::Parser;
use std::process::ExitCode;
use userprofiles::config::{Command, Config};
use userprofiles::{admin, app, telemetry};

// Every request allocates dozens of small, short-lived objects (headers, JSON trees, strings)
// across worker threads; mimalloc's per-thread free lists serve them with less contention than
// glibc's arenas (malloc/free were a tenth of the read path's profile).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if config.command == Some(Command::Healthcheck) {
        return match admin::healthcheck(config.admin_addr) {
            Ok(()) => ExitCode::SUCCESS,
            Err(reason) => {
                eprintln!("{reason}");
                ExitCode::FAILURE
            }
        };
    }
    let telemetry = match telemetry::init_logging(config.log_format) {
        Ok(guard) => guard,
        Err(reason) => {
            eprintln!("{reason}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::install_panic_hook();
    let result = app::run_from_config(config, app::shutdown_signal()).await;
    // Off the async workers: the last batch is sent synchronously.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "userprofiles failed");
            ExitCode::FAILURE
        }
    }
}
