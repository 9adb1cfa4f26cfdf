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

/// mimalloc's `mi_option_purge_delay` (its enum keeps deprecated slots so numbers stay put).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays committed for reuse before mimalloc returns it: mimalloc 2's
/// long-standing default. mimalloc 3's (one second) let the suggest index build at a first
/// start on 100 000 profiles peak at ~180 MB resident instead of ~130 MB, as its freed
/// buffers were not handed back before the next ones were taken.
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// Sets the allocator's options, unless the operator set them through mimalloc's own
/// environment variables. Runs before any other thread exists (setting options is not
/// thread-safe).
fn tune_allocator() {
    let operator_set = ["MIMALLOC_PURGE_DELAY", "MIMALLOC_RESET_DELAY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some());
    if !operator_set {
        // SAFETY: no other thread runs yet; the option and value are in mimalloc's range.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

/// How often the allocator is asked to return freed memory whose purge delay has passed.
const ALLOCATOR_UPKEEP_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// mimalloc returns freed memory to the system once its purge delay has passed, but only when
/// some thread next calls into it. A server that falls idle after a burst (the suggest index
/// built at a first start) would otherwise keep what the burst freed last resident until
/// traffic comes. Under load this is a no-op: allocating threads do it already.
fn start_allocator_upkeep() {
    let started = std::thread::Builder::new()
        .name("allocator-upkeep".into())
        .spawn(|| {
            // mimalloc's collect is a no-op on a thread that never allocated.
            drop(std::hint::black_box(Box::new(0u64)));
            loop {
                std::thread::sleep(ALLOCATOR_UPKEEP_PERIOD);
                // SAFETY: `mi_collect` has no preconditions; `false` purges only what is due.
                unsafe { libmimalloc_sys::mi_collect(false) };
            }
        });
    if let Err(error) = started {
        eprintln!("cannot start the allocator upkeep thread: {error}");
    }
}

fn main() -> ExitCode {
    tune_allocator();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run()),
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
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
    start_allocator_upkeep();
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
