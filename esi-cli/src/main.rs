//! `esi`: the command-line front of the esi library. It reads files, formats output and sets
//! exit codes; all decisions are made by `esi-core`.

/// mimalloc instead of the system allocator: glibc's malloc fragments on the many short-lived
/// JSON values of a large world (its free-list searches grew faster than the world: `esi run`
/// on 20k resources spent over a third of its time in `_int_malloc`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod backend;
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
        /// Only this resource (`TYPE/ID`; a unique prefix of the id, or of `TYPE/ID`, will do).
        #[arg(long)]
        resource: Option<String>,
        /// Plan these changes (the `esi run --changes` file): per phase the jobs, the stacks to
        /// create/update/delete, each router's configuration diff, and a summary.
        #[arg(long)]
        changes: Option<PathBuf>,
        /// With `--changes`: exit 2 when the changes would change something, 0 when not
        /// (1 on errors), as `terraform plan -detailed-exitcode` does.
        #[arg(long, requires = "changes")]
        detailed_exitcode: bool,
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
        /// Print each router's whole configuration per phase (default: the diff against the
        /// previous phase).
        #[arg(long)]
        full: bool,
    },
    /// Run the daemon: the runtime components over etcd (or the embedded in-memory store),
    /// until SIGTERM/SIGINT.
    Serve(Box<commands::serve::ServeArgs>),
    /// Write schemas, heat templates and resources (a file or a directory) to a running system.
    Apply {
        #[command(flatten)]
        target: Target,
        /// A world file or directory.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Wait until every applied resource is final; exit 1 if any ended in `*_ERROR`.
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this many seconds.
        #[arg(long)]
        timeout: Option<f64>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Delete a resource (two-step: marked for deletion, removed once `DELETE_COMPLETED`).
    Delete {
        #[command(flatten)]
        target: Target,
        /// `TYPE/ID`.
        resource: String,
        /// Wait until the resource is gone.
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this many seconds.
        #[arg(long)]
        timeout: Option<f64>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Show resources with their version, states, monitoring and error.
    Get {
        #[command(flatten)]
        target: Target,
        /// `TYPE` or `TYPE/ID`.
        resource: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Show the job queue: waiting, ready and working jobs, holders and dependencies.
    Jobs {
        #[command(flatten)]
        target: Target,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Print resource changes as they happen, until interrupted.
    Watch {
        #[command(flatten)]
        target: Target,
        /// `TYPE` or `TYPE/ID`.
        resource: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Show the leader, live processes, queue depths and the store.
    Status {
        #[command(flatten)]
        target: Target,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
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
        /// Force an interface operationally down: `ROUTER=INTERFACE` (e.g.
        /// `192.0.2.11=xe-0/0/2.2101`); repeatable. A health check after a confirmed commit
        /// touching it then fails.
        #[arg(long = "interface-down", value_name = "ROUTER=INTERFACE")]
        interface_down: Vec<String>,
        /// Keep host keys and running configurations in this directory (restored at start,
        /// the configuration saved after every commit).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Fault: this router accepts sessions but never answers an RPC; repeatable.
        #[arg(long, value_name = "ROUTER")]
        stall: Vec<String>,
        /// Also accept logins with this SSH public key (OpenSSH `.pub` line); repeatable.
        #[arg(long, value_name = "FILE")]
        authorized_key: Vec<PathBuf>,
    },
}

/// The running system a client command talks to.
#[derive(clap::Args)]
struct Target {
    /// etcd endpoints (`http://127.0.0.1:2379[,...]`).
    #[arg(long, env = "ESI_ETCD_ENDPOINTS", value_delimiter = ',')]
    etcd: Vec<String>,
    #[command(flatten)]
    access: backend::EtcdAccess,
}

fn secs(t: Option<f64>) -> Option<std::time::Duration> {
    t.filter(|s| s.is_finite() && *s > 0.0)
        .map(std::time::Duration::from_secs_f64)
}

fn client<F, Fut>(target: Target, f: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(std::sync::Arc<dyn esi_core::store::Store>, Vec<String>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    commands::cluster::block_on(async move {
        backend::set_access(target.access);
        let eps = backend::endpoints(&target.etcd);
        let store = backend::client_store(&eps).await?;
        f(store, eps).await
    })
}

fn init_logging(json: bool, default: &str) {
    use std::io::IsTerminal;
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("ESI_LOG").unwrap_or_else(|_| default.into());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        b.json().init();
    } else {
        b.with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => match args.resolve() {
            Ok(settings) => {
                init_logging(
                    settings.log_format == commands::serve::LogFormat::Json,
                    "info",
                );
                commands::serve::run(settings)
            }
            Err(e) => Err(e),
        },
        other => {
            init_logging(false, "warn");
            dispatch(other)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("esi: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    use commands::cluster;
    match command {
        Command::Serve(_) => unreachable!("handled in main"),
        Command::Apply {
            target,
            file,
            wait,
            timeout,
            output,
        } => client(target, |s, _| async move {
            cluster::apply(s, &file, wait, secs(timeout), output).await
        }),
        Command::Delete {
            target,
            resource,
            wait,
            timeout,
            output,
        } => client(target, |s, _| async move {
            cluster::delete(s, &resource, wait, secs(timeout), output).await
        }),
        Command::Get {
            target,
            resource,
            output,
        } => client(target, |s, _| async move {
            cluster::get(s, resource.as_deref(), output).await
        }),
        Command::Jobs { target, output } => {
            client(target, |s, _| async move { cluster::jobs(s, output).await })
        }
        Command::Watch {
            target,
            resource,
            output,
        } => client(target, |s, _| async move {
            cluster::watch(s, resource.as_deref(), output).await
        }),
        Command::Status { target, output } => client(target, |s, eps| async move {
            cluster::status(s, &eps, output).await
        }),
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
            changes,
            detailed_exitcode,
            output,
        } => match changes {
            Some(changes) => {
                commands::plan::run_changes(&world, &changes, output, detailed_exitcode)
            }
            None => commands::plan::run(&world, resource.as_deref(), output),
        },
        Command::Run {
            world,
            changes,
            output,
            seed,
            full,
        } => commands::run::run(&world, changes.as_deref(), output, seed, full),
        Command::Netsim {
            world,
            routers,
            listen,
            user,
            password,
            known_hosts,
            interface_down,
            state_dir,
            stall,
            authorized_key,
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
            interface_down,
            state_dir,
            stall,
            authorized_keys: authorized_key,
        }),
    }
}
