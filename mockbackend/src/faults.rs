//! Runtime faults a test switches on and off while traffic flows, through
//! `/_mock/<action>?...` or the library's `Server::control`. Pure: parsing and
//! the fault state; the server does the side effects (closing a listener).

use std::time::Duration;

use serde::Serialize;

use crate::profile::{parse_rate, parse_status};
use primitives::{format_duration, parse_duration};

/// One fault, switched on.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Listener closed: new connections are refused, open ones are dropped.
    Down,
    /// Requests are read and never answered.
    Hang,
    /// Every answer waits this much longer.
    Slow(Duration),
    /// Work requests fail at this rate with this status.
    Errors { rate: f64, status: u16 },
    /// Responses stop after this many body bytes and the connection is reset.
    ResetConnections { after: usize },
    /// Not ready, and every response closes its connection, so clients move away.
    Drain,
    /// Pins the simulated CPU and memory figures that `/metrics` reports.
    Load { cpu: f64, memory: f64 },
}

/// Which fault, without its settings: what `clear` and timed reverts name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Down,
    Hang,
    Slow,
    Errors,
    ResetConnections,
    Drain,
    Load,
}

impl FaultKind {
    const ALL: [FaultKind; 7] = [
        FaultKind::Down,
        FaultKind::Hang,
        FaultKind::Slow,
        FaultKind::Errors,
        FaultKind::ResetConnections,
        FaultKind::Drain,
        FaultKind::Load,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Down => "down",
            FaultKind::Hang => "hang",
            FaultKind::Slow => "slow",
            FaultKind::Errors => "errors",
            FaultKind::ResetConnections => "reset-connections",
            FaultKind::Drain => "drain",
            FaultKind::Load => "load",
        }
    }

    fn parse(name: &str) -> Result<FaultKind, String> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == name || (name == "refuse" && *k == FaultKind::Down))
            .ok_or_else(|| format!("unknown fault '{name}'; known: {}", kind_names()))
    }
}

fn kind_names() -> String {
    FaultKind::ALL.map(FaultKind::name).join(", ")
}

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Down => FaultKind::Down,
            Fault::Hang => FaultKind::Hang,
            Fault::Slow(_) => FaultKind::Slow,
            Fault::Errors { .. } => FaultKind::Errors,
            Fault::ResetConnections { .. } => FaultKind::ResetConnections,
            Fault::Drain => FaultKind::Drain,
            Fault::Load { .. } => FaultKind::Load,
        }
    }
}

/// The faults in force on one port.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FaultState {
    pub down: bool,
    pub hang: bool,
    #[serde(serialize_with = "ser_opt_duration")]
    pub slow: Option<Duration>,
    pub errors: Option<ErrorFault>,
    pub reset_after: Option<usize>,
    pub drain: bool,
    pub load: Option<LoadPin>,
    /// Bumped per kind on every change, so a timed revert undoes only the
    /// change it was scheduled for, not a later one.
    #[serde(skip)]
    generation: [u64; 7],
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ErrorFault {
    pub rate: f64,
    pub status: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LoadPin {
    pub cpu: f64,
    pub memory: f64,
}

fn ser_opt_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&format_duration(*d)),
        None => s.serialize_none(),
    }
}

impl FaultState {
    /// Switches `fault` on; returns the generation a timed revert must match.
    pub fn set(&mut self, fault: &Fault) -> u64 {
        match *fault {
            Fault::Down => self.down = true,
            Fault::Hang => self.hang = true,
            Fault::Slow(d) => self.slow = Some(d),
            Fault::Errors { rate, status } => self.errors = Some(ErrorFault { rate, status }),
            Fault::ResetConnections { after } => self.reset_after = Some(after),
            Fault::Drain => self.drain = true,
            Fault::Load { cpu, memory } => self.load = Some(LoadPin { cpu, memory }),
        }
        self.bump(fault.kind())
    }

    pub fn clear(&mut self, kind: FaultKind) {
        match kind {
            FaultKind::Down => self.down = false,
            FaultKind::Hang => self.hang = false,
            FaultKind::Slow => self.slow = None,
            FaultKind::Errors => self.errors = None,
            FaultKind::ResetConnections => self.reset_after = None,
            FaultKind::Drain => self.drain = false,
            FaultKind::Load => self.load = None,
        }
        self.bump(kind);
    }

    /// Clears `kind` only if nothing changed it since `generation`.
    pub fn clear_if(&mut self, kind: FaultKind, generation: u64) -> bool {
        let current = self.generation[kind as usize];
        if current == generation {
            self.clear(kind);
        }
        current == generation
    }

    fn bump(&mut self, kind: FaultKind) -> u64 {
        let g = &mut self.generation[kind as usize];
        *g += 1;
        *g
    }

    pub fn is_clear(&self) -> bool {
        let generation = self.generation;
        *self
            == FaultState {
                generation,
                ..FaultState::default()
            }
    }

    /// Why `/ready` says no, if it does: any fault but a pinned load figure.
    pub fn unready_reason(&self) -> Option<&'static str> {
        if self.drain {
            Some("draining")
        } else if self.down
            || self.hang
            || self.slow.is_some()
            || self.errors.is_some()
            || self.reset_after.is_some()
        {
            Some("faulted")
        } else {
            None
        }
    }
}

/// Which ports a control request is for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// The port the request came in on.
    This,
    Port(u16),
    All,
}

/// A parsed `/_mock/<action>` request.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Switch a fault on, for a while if `revert_after` is given.
    Set {
        fault: Fault,
        revert_after: Option<Duration>,
    },
    Clear(FaultKind),
    /// Clear every fault.
    Reset,
}

pub const ACTIONS: &str =
    "down (refuse), up, hang, slow, errors, reset-connections, drain, undrain, load, clear, reset";

/// A fault control request that does not read: what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ControlError(pub String);

/// Parses `action` (the path after `/_mock/`) and its query string.
pub fn parse_control(action: &str, query: &str) -> Result<(Target, Control), ControlError> {
    control(action, query).map_err(ControlError)
}

fn control(action: &str, query: &str) -> Result<(Target, Control), String> {
    let mut params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut take = |name: &str| -> Option<String> {
        let i = params.iter().position(|(k, _)| k == name)?;
        Some(params.remove(i).1)
    };
    let target = match take("port").as_deref() {
        None | Some("") => Target::This,
        Some("all") => Target::All,
        Some(p) => Target::Port(
            p.parse()
                .map_err(|_| format!("port={p}: not a port number or 'all'"))?,
        ),
    };
    let revert_after = take("for")
        .map(|v| parse_duration(&v).map_err(|why| format!("for={v}: {why}")))
        .transpose()?;
    let duration = |v: Option<String>, default: Duration, name: &str| match v {
        Some(v) => parse_duration(&v).map_err(|why| format!("{name}={v}: {why}")),
        None => Ok(default),
    };
    let percent = |v: Option<String>, name: &str| -> Result<f64, String> {
        let v = v.ok_or_else(|| format!("load needs {name}=<0..100>"))?;
        v.parse::<f64>()
            .ok()
            .filter(|x| (0.0..=100.0).contains(x))
            .ok_or_else(|| format!("{name}={v}: not a percentage between 0 and 100"))
    };
    let set = |fault| Control::Set {
        fault,
        revert_after,
    };
    let control = match action.trim_matches('/') {
        "down" | "refuse" => set(Fault::Down),
        "up" => Control::Clear(FaultKind::Down),
        "hang" => set(Fault::Hang),
        "slow" => set(Fault::Slow(duration(
            take("delay"),
            Duration::from_secs(1),
            "delay",
        )?)),
        "errors" => {
            let rate = match take("rate") {
                Some(r) => parse_rate(&r).map_err(|why| format!("rate={r}: {why}"))?,
                None => 1.0,
            };
            let status = match take("status") {
                Some(s) => parse_status(&s).map_err(|why| format!("status={s}: {why}"))?,
                None => 500,
            };
            set(Fault::Errors { rate, status })
        }
        "reset-connections" => {
            let after = match take("after") {
                Some(a) => a
                    .parse()
                    .map_err(|_| format!("after={a}: not a number of bytes"))?,
                None => 16,
            };
            set(Fault::ResetConnections { after })
        }
        "drain" => set(Fault::Drain),
        "undrain" => Control::Clear(FaultKind::Drain),
        "load" => {
            let cpu = percent(take("cpu"), "cpu")?;
            let memory = percent(take("memory"), "memory")?;
            set(Fault::Load { cpu, memory })
        }
        "clear" => {
            let name =
                take("fault").ok_or_else(|| format!("clear needs fault=<{}>", kind_names()))?;
            Control::Clear(FaultKind::parse(&name)?)
        }
        "reset" => Control::Reset,
        other => return Err(format!("unknown action '{other}'; known: {ACTIONS}")),
    };
    if let Some((k, _)) = params.first() {
        return Err(format!("unknown parameter '{k}' for {action}"));
    }
    if revert_after.is_some() && !matches!(control, Control::Set { .. }) {
        return Err(format!(
            "for= only applies to actions that switch a fault on, not {action}"
        ));
    }
    Ok((target, control))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_with_defaults() {
        assert_eq!(
            parse_control("down", "for=4s"),
            Ok((
                Target::This,
                Control::Set {
                    fault: Fault::Down,
                    revert_after: Some(Duration::from_secs(4))
                }
            ))
        );
        assert_eq!(
            parse_control("errors", "rate=0.25&status=503&port=8002"),
            Ok((
                Target::Port(8002),
                Control::Set {
                    fault: Fault::Errors {
                        rate: 0.25,
                        status: 503
                    },
                    revert_after: None
                }
            ))
        );
        assert_eq!(
            parse_control("slow", "port=all"),
            Ok((
                Target::All,
                Control::Set {
                    fault: Fault::Slow(Duration::from_secs(1)),
                    revert_after: None
                }
            ))
        );
        assert_eq!(
            parse_control("up", ""),
            Ok((Target::This, Control::Clear(FaultKind::Down)))
        );
        assert_eq!(
            parse_control("clear", "fault=hang"),
            Ok((Target::This, Control::Clear(FaultKind::Hang)))
        );
        assert_eq!(
            parse_control("reset", ""),
            Ok((Target::This, Control::Reset))
        );
    }

    #[test]
    fn bad_control_requests_say_why() {
        assert!(parse_control("explode", "")
            .unwrap_err()
            .0
            .contains("unknown action"));
        assert!(parse_control("errors", "rate=2")
            .unwrap_err()
            .0
            .contains("rate=2"));
        assert!(parse_control("slow", "delay=soon")
            .unwrap_err()
            .0
            .contains("delay=soon"));
        assert!(parse_control("load", "cpu=90")
            .unwrap_err()
            .0
            .contains("memory"));
        assert!(parse_control("down", "colour=red")
            .unwrap_err()
            .0
            .contains("unknown parameter 'colour'"));
        assert!(parse_control("up", "for=1s")
            .unwrap_err()
            .0
            .contains("for="));
        assert!(parse_control("clear", "fault=gremlins")
            .unwrap_err()
            .0
            .contains("unknown fault"));
        assert!(parse_control("down", "port=x")
            .unwrap_err()
            .0
            .contains("port=x"));
    }

    #[test]
    fn timed_revert_undoes_only_its_own_change() {
        let mut s = FaultState::default();
        let g = s.set(&Fault::Slow(Duration::from_secs(1)));
        let later = s.set(&Fault::Slow(Duration::from_secs(2)));
        assert!(!s.clear_if(FaultKind::Slow, g), "a newer slow fault stays");
        assert_eq!(s.slow, Some(Duration::from_secs(2)));
        assert!(s.clear_if(FaultKind::Slow, later));
        assert!(s.is_clear());
    }

    #[test]
    fn readiness_follows_faults_but_not_pinned_load() {
        let mut s = FaultState::default();
        assert_eq!(s.unready_reason(), None);
        s.set(&Fault::Load {
            cpu: 90.0,
            memory: 95.0,
        });
        assert_eq!(s.unready_reason(), None);
        s.set(&Fault::Errors {
            rate: 0.1,
            status: 500,
        });
        assert_eq!(s.unready_reason(), Some("faulted"));
        s.set(&Fault::Drain);
        assert_eq!(s.unready_reason(), Some("draining"));
    }
}
