//! A scenario's timed events (kill, revive, a weight change, any mock
//! fault), applied at their offsets from the start of the load, with what
//! happened and when revived backends came back.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use balancer::proxy::Proxy;
use mockbackend::Server;

use crate::spec::Loaded;
use crate::stage::Stage;

/// The events while they run; [`Events::finish`] says what happened.
pub struct Events {
    task: tokio::task::JoinHandle<()>,
    revived: Arc<Mutex<Vec<(usize, f64)>>>,
    happened: Arc<Mutex<Vec<Applied>>>,
}

/// One event as it went: when (seconds from the start), the report's
/// line, and what was done when it worked.
type Applied = (f64, String, Option<String>);

/// What the events did: a line each, and each revive's backend and time
/// (Unix seconds).
pub struct Happened {
    pub lines: Vec<String>,
    pub revived: Vec<(usize, f64)>,
    /// Each event that was applied: seconds from the start, and what.
    pub marks: Vec<(f64, String)>,
}

impl Events {
    /// Starts applying the scenario's events on the stage, now.
    pub fn start(loaded: &Loaded, stage: &Stage) -> Events {
        let revived = Arc::new(Mutex::new(Vec::new()));
        let happened = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(events(
            Arc::new(loaded_events(loaded)),
            stage.servers.clone(),
            stage.proxy.clone(),
            stage.local.clone(),
            stage.addrs.clone(),
            revived.clone(),
            happened.clone(),
        ));
        Events {
            task,
            revived,
            happened,
        }
    }

    /// Stops the events still due (the load is over) and says what happened.
    pub fn finish(self) -> Happened {
        self.task.abort();
        let happened = taken(&self.happened);
        Happened {
            lines: happened.iter().map(|(_, line, _)| line.clone()).collect(),
            revived: taken(&self.revived),
            marks: (happened.into_iter())
                .filter_map(|(at, _, done)| Some((at, done?)))
                .collect(),
        }
    }
}

fn taken<T: Clone>(m: &Mutex<Vec<T>>) -> Vec<T> {
    m.lock().map(|v| v.clone()).unwrap_or_default()
}

/// One timed event, ready to apply.
struct Due {
    at: Duration,
    backend: usize,
    action: String,
    control: Option<mockbackend::Control>,
    weight: Option<u32>,
}

fn loaded_events(loaded: &Loaded) -> Vec<Due> {
    let mut due: Vec<Due> = loaded
        .scenario
        .events
        .iter()
        .zip(&loaded.events)
        .map(|(e, (backend, control))| {
            let e = e.get_ref();
            Due {
                at: e.at.0,
                backend: *backend,
                action: if e.with.is_empty() {
                    format!("{} {}", e.action, loaded.names[*backend])
                } else {
                    format!("{} {} ({})", e.action, loaded.names[*backend], e.with)
                },
                control: control.clone(),
                weight: e.weight,
            }
        })
        .collect();
    due.sort_by_key(|d| d.at);
    due
}

/// Applies each event at its time; records what happened, and when
/// revived nodes came back (Unix seconds).
async fn events(
    due: Arc<Vec<Due>>,
    servers: Option<Arc<Server>>,
    proxy: Option<Arc<Proxy>>,
    local: Vec<usize>,
    addrs: Vec<String>,
    revived: Arc<Mutex<Vec<(usize, f64)>>>,
    happened: Arc<Mutex<Vec<Applied>>>,
) {
    let start = Instant::now();
    for d in due.iter() {
        tokio::time::sleep_until((start + d.at).into()).await;
        let result = match (&d.control, d.weight) {
            (Some(control), _) => match (&servers, local.iter().position(|l| *l == d.backend)) {
                (Some(s), Some(j)) => s.control(j, control.clone()).await,
                _ => Err("not an in-process backend".to_string()),
            },
            (None, Some(w)) => match &proxy {
                Some(p) if p.set_weight(&addrs[d.backend], w) > 0 => Ok(()),
                _ => Err("the in-process balancer does not have it".to_string()),
            },
            (None, None) => Ok(()),
        };
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        if matches!(
            d.control,
            Some(mockbackend::Control::Clear(mockbackend::FaultKind::Down))
        ) {
            if let Ok(mut r) = revived.lock() {
                r.push((d.backend, now));
            }
        }
        let at = start.elapsed().as_secs_f64();
        let done = result.is_ok().then(|| d.action.clone());
        let line = match result {
            Ok(()) => format!("{:>6.1}s  {}", start.elapsed().as_secs_f64(), d.action),
            Err(e) => format!(
                "{:>6.1}s  {} failed: {e}",
                start.elapsed().as_secs_f64(),
                d.action
            ),
        };
        if let Ok(mut h) = happened.lock() {
            h.push((at, line, done));
        }
    }
}
