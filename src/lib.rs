//! `iam-keys`: rotate long-lived AWS IAM access keys safely, for one profile or all of them.
//!
//! The modules follow the data flow, and import only downwards: arguments and output
//! ([`cli`]) → the protocol ([`rotation`], its process runner [`hooks`]; also [`audit`],
//! [`grant`], [`schedule`]) → the keys the profiles hold ([`inventory`]) → resolved
//! [`settings`], the profile files ([`profiles`]) and [`policy`] documents → AWS ([`aws`]) →
//! [`time`] and [`secret`].
//! `tests/layering.rs` checks the order; ARCHITECTURE.md maps the tree.

pub mod audit;
pub mod aws;
pub mod cli;
pub mod error;
pub mod grant;
pub mod hooks;
pub mod inventory;
mod logging;
pub mod policy;
pub mod profiles;
pub mod rotation;
pub mod schedule;
pub mod secret;
pub mod settings;
pub mod time;

use cli::{Cli, Command};
use error::{Error, Outcome};
use settings::{Env, Settings};

/// Run one command. Output goes to stdout (results) and stderr (progress, warnings).
pub fn run(cli: Cli) -> Result<Outcome, Error> {
    // Generated from the clap definitions alone: no environment, files or network.
    match &cli.command {
        Command::Completions(args) => return cli::completions::run(args),
        Command::Man(args) => return cli::man::run(args),
        _ => {}
    }
    let env = Env::from_process();
    logging::init(cli.global.verbose, &env);
    let settings = Settings::resolve(&cli.global.flags(), env)?;
    let ui = cli::ui::Ui::new(&settings);
    cli::audit::check_output(&cli.command, &settings)?;
    match &cli.command {
        Command::Policy(args) if args.apply => cli::policy_apply::run(args, &settings, &ui),
        Command::Policy(args) => cli::policy::run_command(args, &settings, &ui),
        Command::Status(args) => cli::status::run(args, &settings, &ui),
        Command::Rotate(args) => cli::rotate::run(args, &settings, &ui),
        Command::Recover(args) => cli::recover::run(args, &settings, &ui),
        Command::Prune(args) => cli::prune::run(args, &settings, &ui),
        Command::Schedule(args) => cli::schedule::run(args, &settings, &ui),
        Command::Audit(args) => cli::audit::run(args, &settings, &ui),
        Command::Completions(_) | Command::Man(_) => unreachable!("handled above"),
    }
}
