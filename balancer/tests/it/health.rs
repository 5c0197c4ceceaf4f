//! Passive health exactly as nginx keeps it.

use balancer::{Method, Outcome, Server};

use crate::common::*;

#[test]
fn a_failed_server_sits_out_fail_timeout_then_gets_one_probe() {
    // a: max_fails=1 fail_timeout=10s. It fails at t=0.
    let mut up = upstream(Method::RoundRobin, weighted(&[1, 1]));
    let c = Default::default();
    assert_eq!(request(&mut up, &c, secs(0), Outcome::FAILED), "a");
    // Out while now - checked <= 10: t = 0..=10 all go to b.
    for t in [1, 5, 10] {
        assert_eq!(picks_at(&mut up, t, 2), ["b", "b"], "t={t}");
    }
    // t=11: a is eligible again, but smooth weighted round robin decides when.
    // The failure took weight/max_fails = 1 off a's effective weight (1 -> 0),
    // and a's current weight lagged while it sat out:
    //            a: current (effective)   b: current (effective)   pick
    //   before         -1 (0)                  1 (1)
    //   pick 1   -1+0 = -1 (-> 1)           1+1 = 2, -1 -> 1          b
    //   pick 2   -1+1 =  0                  1+1 = 2, -2 -> 0          b
    //   pick 3    0+1 =  1, -2 -> -1        0+1 = 1  (tie: earlier)   a
    // Pick 3 is the probe; it restarted the window (checked = 11), so while
    // it is in flight a sits out again.
    assert_eq!(request(&mut up, &c, secs(11), Outcome::OK), "b");
    assert_eq!(request(&mut up, &c, secs(11), Outcome::OK), "b");
    let mut probe = up.start(&c);
    let p = up.pick(&mut probe, secs(11)).unwrap();
    assert_eq!(short(&up, p), "a");
    assert_eq!(request(&mut up, &c, secs(11), Outcome::OK), "b");
    // The probe succeeds: fails reset, a is back in rotation.
    up.finish(&mut probe, Outcome::OK, secs(11));
    assert_eq!(up.peer(p).fails, 0);
    let seq = picks_at(&mut up, 12, 4);
    assert_eq!(seq.iter().filter(|s| *s == "a").count(), 2, "{seq:?}");
}

fn picks_at(up: &mut balancer::Upstream, t: u64, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| request(up, &Default::default(), secs(t), Outcome::OK))
        .collect()
}

#[test]
fn max_fails_counts_failures_before_taking_a_server_out() {
    let servers = vec![
        Server::new("a:80").max_fails(3).fail_timeout(30),
        Server::new("b:80"),
    ];
    let mut up = upstream(Method::RoundRobin, servers);
    let c = Default::default();
    let mut fails_on_a = 0;
    let mut t = 0;
    while fails_on_a < 3 {
        if request(&mut up, &c, secs(t), Outcome::FAILED) == "a" {
            fails_on_a += 1;
        }
        t += 1;
    }
    // Three failures on a: out until 30 s after the last one.
    let last = t - 1;
    let seq = picks_at(&mut up, last + 30, 4);
    assert!(seq.iter().all(|s| s == "b"), "{seq:?}");
    let seq = picks_at(&mut up, last + 31, 4);
    assert!(seq.contains(&"a".to_string()), "{seq:?}");
}

#[test]
fn a_failure_lowers_effective_weight_which_climbs_back() {
    // weight 10, max_fails 2: a failure takes 10/2 = 5 off the effective
    // weight; every pick that considers the peer gives one back.
    let servers = vec![
        Server::new("a:80").weight(10).max_fails(2),
        Server::new("b:80").weight(10).max_fails(2),
    ];
    let mut up = upstream(Method::RoundRobin, servers);
    let c = Default::default();
    assert_eq!(request(&mut up, &c, secs(0), Outcome::FAILED), "a");
    let a = up.peers().next().unwrap().1.clone();
    assert_eq!((a.fails, a.effective_weight), (1, 5));
    // While a is below its weight, b gets more than half.
    let seq = picks_at(&mut up, 0, 10);
    assert!(seq.iter().filter(|s| *s == "b").count() > 5, "{seq:?}");
    let a = up.peers().next().unwrap().1.clone();
    assert_eq!(a.effective_weight, 10, "climbed back one per pick");
    // A second failure would take it out (2 >= max_fails).
    assert_eq!(a.fails, 1);
}

#[test]
fn a_success_clears_fails_only_after_the_window_restarts() {
    // max_fails=3: one failure at t=0, successes at t=1..10 leave fails at 1
    // (nginx only clears it once `checked` moved past the failure); at t=11
    // the pick restarts the window and the success clears it.
    let servers = vec![Server::new("a:80").max_fails(3), Server::new("b:80").down()];
    let mut up = upstream(Method::RoundRobin, servers);
    let c = Default::default();
    request(&mut up, &c, secs(0), Outcome::FAILED);
    request(&mut up, &c, secs(5), Outcome::OK);
    assert_eq!(up.peers().next().unwrap().1.fails, 1);
    request(&mut up, &c, secs(11), Outcome::OK);
    assert_eq!(up.peers().next().unwrap().1.fails, 0);
}
