//! `failover controller`.

use std::process::ExitCode;

use crate::controller::{self, Error};

/// Arguments of `failover controller`.
#[derive(Debug, clap::Args)]
pub(super) struct ControllerArgs {
    #[command(flatten)]
    manifests: super::Manifests,
}

/// Runs the controller; exit 0 after SIGTERM/SIGINT, 1 invalid manifests, 2 otherwise.
pub(super) fn run(args: ControllerArgs) -> ExitCode {
    let runtime = match super::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(controller::run(args.manifests.files)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Load(e)) => super::report_load_error(e),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
