//! `esi`: the command-line front of the esi library. It reads files, formats output and sets
//! exit codes; all decisions are made by `esi-core`.

mod commands;
mod worlddir;

/// Writes command output to stdout. A closed pipe (`esi plan | head`) ends the output quietly
/// instead of panicking like `print!` does.
pub fn emit(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Network service orchestration: resources → jobs → Heat stacks → devices.
#[derive(Parser)]
#[command(name = "esi", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Output format of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people.
    Text,
    /// For scripts.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run recorded golden cases (files or directories, recursively) and report differences.
    Conformance {
        /// Case files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Also compare rendered template text byte for byte.
        #[arg(long)]
        strict: bool,
    },
    /// Print the jobs a world's resources produce, in processing order.
    Expand {
        /// A directory of YAML/JSON files (schemas, heat templates, resources) or one world file.
        world: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Seed of the job-id suffixes (runs are reproducible).
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Show what every change would do: templates, jobs, rendered stacks (secrets masked),
    /// the Junos configuration per device and the monitoring targets.
    Plan {
        /// A world directory or file.
        world: PathBuf,
        /// Only this resource (`TYPE/ID`).
        #[arg(long)]
        resource: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Run the world end to end on the embedded default (in-memory store, local Heat, simulated
    /// routers), then apply scripted changes; print the final state.
    Run {
        /// A world directory or file.
        world: PathBuf,
        /// A YAML/JSON list of changes `{op: create|modify|delete, type, id, body}`.
        #[arg(long)]
        changes: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Seed of ids and of the simulated scheduling.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Serve simulated routers as Junos-dialect NETCONF servers over SSH on loopback ports;
    /// prints `NAME HOST:PORT SHA256:FINGERPRINT` per router once all listen, runs until
    /// interrupted.
    Netsim {
        /// A world whose routers to serve (as `esi run` finds them).
        world: Option<PathBuf>,
        /// Serve N routers named r1..rN instead.
        #[arg(long)]
        routers: Option<usize>,
        /// Address of the first router; the others use the following ports.
        #[arg(long, default_value = "127.0.0.1:8300")]
        listen: std::net::SocketAddr,
        /// Login user.
        #[arg(long, default_value = "esi")]
        user: String,
        /// Login password (or the environment variable ESI_NETSIM_PASSWORD).
        /// (default `esi`).
        #[arg(long)]
        password: Option<String>,
        /// Write an OpenSSH known_hosts file for the routers.
        #[arg(long)]
        known_hosts: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ESI_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Conformance {
            paths,
            output,
            strict,
        } => commands::conformance::run(&paths, output, strict),
        Command::Expand {
            world,
            output,
            seed,
        } => commands::expand::run(&world, output, seed),
        Command::Plan {
            world,
            resource,
            output,
        } => commands::plan::run(&world, resource.as_deref(), output),
        Command::Run {
            world,
            changes,
            output,
            seed,
        } => commands::run::run(&world, changes.as_deref(), output, seed),
        Command::Netsim {
            world,
            routers,
            listen,
            user,
            password,
            known_hosts,
        } => commands::netsim::run(commands::netsim::Args {
            world: world.as_deref(),
            routers,
            listen,
            user,
            password: esi_core::secret::Secret::new(
                password
                    .or_else(|| std::env::var("ESI_NETSIM_PASSWORD").ok())
                    .unwrap_or_else(|| "esi".into()),
            ),
            known_hosts: known_hosts.as_deref(),
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("esi: {e:#}");
            ExitCode::from(2)
        }
    }
}
