//! The command table: parsing a line into a [`Command`], and the [`Reply`] shapes.

use std::{fmt, net::Ipv6Addr, time::Duration};

/// A Shim6 context tag as typed by an operator: 47 bits (RFC 5533 §5.1).
pub const MAX_TAG: u64 = (1 << 47) - 1;

/// Which contexts a command is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Target {
    /// `*`: every context.
    All,
    /// One context, by its local context tag.
    Tag(u64),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("*"),
            Self::Tag(t) => write!(f, "{t:#x}"),
        }
    }
}

/// A parsed control command.
#[derive(Clone, PartialEq, Debug)]
pub enum Command {
    /// `help [COMMAND]`.
    Help(Option<String>),
    /// `quit`: end the session.
    Quit,
    /// `ls`: the contexts, one line each.
    Ls,
    /// `cat TAG|*`: everything about a context.
    Cat(Target),
    /// `rm TAG|*`: close contexts.
    Rm(Target),
    /// `locators`: the local locators and their state.
    Locators,
    /// `params`: the identity (HBA/CGA) parameters and configuration in use.
    Params,
    /// `stats`: data-plane and protocol counters, every drop reason.
    Stats,
    /// `set tsend SECONDS`: REAP Send Timeout for new contexts (RFC 5534 §7).
    SetSendTimeout(Duration),
    /// `establish PEER_ULID`: start a context with a peer now.
    Establish(Ipv6Addr),
    /// `explore TAG`: start a REAP exploration on a context (RFC 5534 §4.3).
    Explore(u64),
    /// `mptcp`: the MPTCP path manager's connections, subflows, policy and last
    /// decisions (issue 8).
    Mptcp,
    /// `bindings`: the home agent's Binding Cache and counters, rejected Binding
    /// Updates included (issue 7, RFC 6275 §10.1).
    Bindings,
    /// `bul`: the mobile node's Binding Update List and care-of addresses (issue 7,
    /// RFC 6275 §11.1).
    Bul,
}

/// One entry of the command table.
pub struct Spec {
    /// The command word.
    pub name: &'static str,
    /// Argument synopsis.
    pub args: &'static str,
    /// One-line description.
    pub about: &'static str,
}

/// Every command, in the order `help` lists them.
pub const COMMANDS: &[Spec] = &[
    Spec {
        name: "help",
        args: "[COMMAND]",
        about: "list the commands, or describe one",
    },
    Spec {
        name: "ls",
        args: "",
        about: "list the Shim6 contexts: tag, state, ULIDs, current locator pair",
    },
    Spec {
        name: "cat",
        args: "TAG|*",
        about: "show a context in full: state, ULIDs, locator sets and their verification, \
                current pair, REAP state and timers, counters",
    },
    Spec {
        name: "rm",
        args: "TAG|*",
        about: "close a context (or all)",
    },
    Spec {
        name: "locators",
        args: "",
        about: "local locators: address, interface, whether usable (RFC 5534 §3.1)",
    },
    Spec {
        name: "params",
        args: "",
        about: "identity (HBA/CGA) parameters, timers and policy in use",
    },
    Spec {
        name: "stats",
        args: "",
        about: "counters: data plane, control interface, drop reasons",
    },
    Spec {
        name: "set",
        args: "tsend SECONDS",
        about: "set the REAP Send Timeout (1..=100 s) for contexts made from now on",
    },
    Spec {
        name: "establish",
        args: "PEER_ULID",
        about: "start a context with a peer now",
    },
    Spec {
        name: "explore",
        args: "TAG",
        about: "start a REAP exploration on a context",
    },
    Spec {
        name: "mptcp",
        args: "",
        about: "MPTCP path manager: connections, subflows, policy, last decisions",
    },
    Spec {
        name: "bindings",
        args: "",
        about: "MipShim6 home agent: Binding Cache (home address, care-of address, sequence, \
                lifetime), rejected Binding Updates and counters",
    },
    Spec {
        name: "bul",
        args: "",
        about: "MipShim6 mobile node: Binding Update List per home address and home agent, \
                care-of addresses, counters",
    },
    Spec {
        name: "quit",
        args: "",
        about: "end the session",
    },
];

/// A line that is not a valid command.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// A parsed line: the command and whether `--json` was given.
#[derive(Clone, PartialEq, Debug)]
pub struct Line {
    /// The command.
    pub command: Command,
    /// `--json` anywhere on the line: answer with one JSON document on one line.
    pub json: bool,
}

/// Parses one command line; `Ok(None)` for an empty line.
pub fn parse(line: &str) -> Result<Option<Line>, ParseError> {
    let mut json = false;
    let mut words = Vec::new();
    for w in line.split_whitespace() {
        if w == "--json" {
            json = true;
        } else {
            words.push(w);
        }
    }
    let Some((&name, args)) = words.split_first() else {
        return if json {
            Err(ParseError("--json needs a command".into()))
        } else {
            Ok(None)
        };
    };
    let usage = |name: &str| {
        let spec = COMMANDS.iter().find(|s| s.name == name);
        ParseError(format!(
            "usage: {name} {}",
            spec.map(|s| s.args).unwrap_or_default()
        ))
    };
    let exact = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(usage(name))
        }
    };
    let command = match name {
        "help" | "?" => {
            if args.len() > 1 {
                return Err(usage("help"));
            }
            Command::Help(args.first().map(|s| (*s).to_owned()))
        }
        "quit" | "exit" => {
            exact(0)?;
            Command::Quit
        }
        "ls" => {
            exact(0)?;
            Command::Ls
        }
        "cat" => {
            exact(1)?;
            Command::Cat(target(args[0])?)
        }
        "rm" => {
            exact(1)?;
            Command::Rm(target(args[0])?)
        }
        "locators" => {
            exact(0)?;
            Command::Locators
        }
        "params" => {
            exact(0)?;
            Command::Params
        }
        "mptcp" => {
            exact(0)?;
            Command::Mptcp
        }
        "stats" => {
            exact(0)?;
            Command::Stats
        }
        "bindings" => {
            exact(0)?;
            Command::Bindings
        }
        "bul" => {
            exact(0)?;
            Command::Bul
        }
        "set" => {
            exact(2)?;
            if args[0] != "tsend" {
                return Err(ParseError(format!(
                    "set: unknown parameter `{}` (known: tsend)",
                    args[0]
                )));
            }
            let secs: f64 = args[1].parse().map_err(|_| {
                ParseError(format!(
                    "set tsend: `{}` is not a number of seconds",
                    args[1]
                ))
            })?;
            // RFC 5534 §7 recommends 10..=100 s; shorter values are allowed for tests,
            // as in the configuration.
            if !(1.0..=100.0).contains(&secs) {
                return Err(ParseError(format!(
                    "set tsend: {secs} is out of range 1..=100 seconds"
                )));
            }
            Command::SetSendTimeout(Duration::from_secs_f64(secs))
        }
        "establish" => {
            exact(1)?;
            let ulid: Ipv6Addr = args[0].parse().map_err(|_| {
                ParseError(format!("establish: `{}` is not an IPv6 address", args[0]))
            })?;
            if ulid.is_unspecified() || ulid.is_loopback() || ulid.is_multicast() {
                return Err(ParseError(format!(
                    "establish: {ulid} is not a unicast address"
                )));
            }
            Command::Establish(ulid)
        }
        "explore" => {
            exact(1)?;
            match target(args[0])? {
                Target::Tag(t) => Command::Explore(t),
                Target::All => return Err(ParseError("explore: needs one TAG, not *".into())),
            }
        }
        other => {
            return Err(ParseError(format!(
                "unknown command `{other}` (try `help`)"
            )));
        }
    };
    Ok(Some(Line { command, json }))
}

/// `*`, a decimal tag or a `0x` hexadecimal tag.
fn target(s: &str) -> Result<Target, ParseError> {
    if s == "*" {
        return Ok(Target::All);
    }
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    match parsed {
        Ok(t) if t <= MAX_TAG => Ok(Target::Tag(t)),
        Ok(_) => Err(ParseError(format!(
            "`{s}` is not a context tag: tags have 47 bits (RFC 5533 §5.1)"
        ))),
        Err(_) => Err(ParseError(format!(
            "`{s}` is not a context tag (a number, 0x... or *)"
        ))),
    }
}

/// The answer to a command: a text form for people and a JSON form for scripts.
#[derive(Clone, PartialEq, Debug)]
pub struct Reply {
    /// Lines of text, without line ends.
    pub text: String,
    /// The same content as JSON.
    pub json: serde_json::Value,
}

impl Reply {
    /// A reply whose text and JSON are given.
    pub fn new(text: impl Into<String>, json: serde_json::Value) -> Self {
        Self {
            text: text.into(),
            json,
        }
    }
}

/// Why a command failed (the session goes on).
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum CommandError {
    /// The command needs the Shim6 protocol core, which this daemon does not run (yet).
    #[error("not available: protocol core not running")]
    NoProtocolCore,
    /// The command was understood but cannot be carried out.
    #[error("{0}")]
    Failed(String),
    /// The daemon is shutting down and did not answer.
    #[error("daemon shutting down")]
    ShuttingDown,
}

/// The help text: the whole table, or one command.
pub fn help(topic: Option<&str>) -> Result<Reply, CommandError> {
    let specs: Vec<&Spec> = match topic {
        None => COMMANDS.iter().collect(),
        Some(t) => match COMMANDS.iter().find(|s| s.name == t) {
            Some(s) => vec![s],
            None => {
                return Err(CommandError::Failed(format!("help: no command `{t}`")));
            }
        },
    };
    let mut text = String::new();
    for s in &specs {
        let synopsis = format!("{} {}", s.name, s.args);
        text.push_str(&format!("{:<22} {}\n", synopsis.trim_end(), s.about));
    }
    if topic.is_none() {
        text.push_str("Add --json to any command for one line of JSON.");
    } else {
        text.pop();
    }
    let json = serde_json::Value::Array(
        specs
            .iter()
            .map(|s| serde_json::json!({"command": s.name, "args": s.args, "about": s.about}))
            .collect(),
    );
    Ok(Reply::new(text, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(line: &str) -> Command {
        parse(line).unwrap().unwrap().command
    }

    #[test]
    fn table_parses() {
        assert_eq!(parse("   ").unwrap(), None);
        assert_eq!(cmd("help"), Command::Help(None));
        assert_eq!(cmd("help cat"), Command::Help(Some("cat".into())));
        assert_eq!(cmd("ls"), Command::Ls);
        assert_eq!(cmd("cat *"), Command::Cat(Target::All));
        assert_eq!(cmd("cat 0x1f"), Command::Cat(Target::Tag(31)));
        assert_eq!(cmd("rm 17"), Command::Rm(Target::Tag(17)));
        assert_eq!(cmd("locators"), Command::Locators);
        assert_eq!(cmd("params"), Command::Params);
        assert_eq!(cmd("mptcp"), Command::Mptcp);
        assert_eq!(cmd("bindings"), Command::Bindings);
        assert_eq!(cmd("bul"), Command::Bul);
        let l = parse("bindings --json").unwrap().unwrap();
        assert!(l.json && l.command == Command::Bindings);
        assert_eq!(cmd("stats"), Command::Stats);
        assert_eq!(
            cmd("set tsend 2.5"),
            Command::SetSendTimeout(Duration::from_millis(2500))
        );
        assert_eq!(
            cmd("establish 2001:db8:b1::1"),
            Command::Establish("2001:db8:b1::1".parse().unwrap())
        );
        assert_eq!(cmd("explore 0x7fffffffffff"), Command::Explore(MAX_TAG));
        assert_eq!(cmd("quit"), Command::Quit);
        let l = parse("stats --json").unwrap().unwrap();
        assert!(l.json);
        let l = parse("--json ls").unwrap().unwrap();
        assert!(l.json && l.command == Command::Ls);
    }

    #[test]
    fn bad_lines_say_why() {
        let e = |l: &str| parse(l).unwrap_err().0;
        assert_eq!(e("frobnicate"), "unknown command `frobnicate` (try `help`)");
        assert_eq!(e("cat"), "usage: cat TAG|*");
        assert_eq!(e("ls extra"), "usage: ls ");
        assert_eq!(e("bul 1"), "usage: bul ");
        assert!(e("cat 0x800000000000").contains("47 bits"));
        assert!(e("cat zz").contains("not a context tag"));
        assert!(e("set tsend 0").contains("out of range"));
        assert!(e("set tsend x").contains("not a number"));
        assert!(e("set mtu 3").contains("unknown parameter"));
        assert!(e("establish ff02::1").contains("not a unicast"));
        assert!(e("establish foo").contains("not an IPv6 address"));
        assert!(e("explore *").contains("one TAG"));
        assert!(e("--json").contains("needs a command"));
    }

    #[test]
    fn help_lists_every_command() {
        let all = help(None).unwrap();
        for s in COMMANDS {
            assert!(all.text.contains(s.name), "{}", s.name);
        }
        assert_eq!(all.json.as_array().unwrap().len(), COMMANDS.len());
        assert!(help(Some("nope")).is_err());
        assert!(help(Some("cat")).unwrap().text.starts_with("cat TAG|*"));
    }
}
