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
    telemetry::init_logging(config.log_format);
    telemetry::install_panic_hook();
    match app::run_from_config(config, app::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "userprofiles failed");
            ExitCode::FAILURE
        }
    }
}
