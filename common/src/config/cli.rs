//! The command-line flags every tracker binary shares.

use super::{load, print_default, TrackerConfig};
use clap::Parser;
use std::path::PathBuf;

/// Flags shared by riptide-udp, riptide-http and riptide-ws.
#[derive(Debug, Parser)]
pub struct Cli {
    /// Load this TOML config file (default: embedded defaults).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the default config, with a comment on every key, and exit.
    #[arg(short, long)]
    pub print_config: bool,
    /// Validate the config file and exit 0 (valid) or 1 (not).
    #[arg(long)]
    pub check_config: bool,
    /// Print which io_uring features this kernel offers and exit.
    #[arg(long)]
    pub probe: bool,
    /// Once every socket is bound, write one "protocol address" line per
    /// socket to this file (renamed into place), for supervisors and tests.
    #[arg(long, value_name = "FILE")]
    pub ready_file: Option<PathBuf>,
}

/// What the binary should do after the CLI was read.
#[derive(Debug)]
pub enum Command<T> {
    /// Run the tracker with this config (and ready file).
    Run(T, Option<PathBuf>),
    /// Print the io_uring probe and exit.
    Probe,
}

impl Cli {
    /// Parses `std::env::args`, handles `--print-config` and `--check-config`
    /// (which exit), and loads the config.
    pub fn read<T: TrackerConfig>() -> anyhow::Result<Command<T>> {
        let matches = <Self as clap::CommandFactory>::command()
            .name(T::NAME)
            .get_matches();
        let cli = <Self as clap::FromArgMatches>::from_arg_matches(&matches)?;
        if cli.print_config {
            print!("{}", print_default::<T>());
            std::process::exit(0);
        }
        if cli.probe {
            return Ok(Command::Probe);
        }
        let config = match &cli.config {
            Some(path) => load::<T>(path),
            None => Ok(T::default()),
        };
        if cli.check_config {
            match config {
                Ok(_) => {
                    println!("config ok");
                    std::process::exit(0);
                }
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
        }
        Ok(Command::Run(config?, cli.ready_file))
    }
}
