//! Pod start latency through the CRI, the runtime under test (handler `rt`, no argv wrapper)
//! against runc (handler `runc`) in the same containerd, interleaved: RunPodSandbox →
//! CreateContainer → StartContainer → ContainerStatus says running. A benchmark: printed,
//! never asserted. `RT_BIN=target/<triple>/release/rt` times the release build; under
//! `RT_TEST_CGROUP_DRIVER=systemd` both handlers have `SystemdCgroup = true` (`make bench-cri-v2`).

use super::*;

const ROUNDS: usize = 7;

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[test]
fn cri_pod_start_latency_rt_vs_runc() {
    if is_runc() {
        eprintln!("skip: the runtime under test is runc: nothing to compare runc with");
        return;
    }
    let k = kube_or_skip!("latency", &rt_bin());
    let handlers = ["rt", "runc"];
    // Per handler: (sandbox ready, container running), both from the RunPodSandbox call.
    let mut times: Vec<(Vec<Duration>, Vec<Duration>)> = vec![Default::default(); 2];
    // Round 0 warms containerd (snapshots, first shim) and is not counted.
    for round in 0..=ROUNDS {
        for i in 0..2 {
            // Alternate which handler goes first, so neither always follows the other's teardown.
            let h = (i + round) % 2;
            let config = k.pod_config(&format!("lat-{}", handlers[h]), false);
            let t = Instant::now();
            let pod = k.run_pod(config, handlers[h]);
            let sandbox = t.elapsed();
            let id = k.run_container(
                &pod,
                Spec {
                    name: "c",
                    args: &["sleep", "1000"],
                    ..Default::default()
                },
            );
            k.wait_state(&id, cri::ContainerState::ContainerRunning);
            let running = t.elapsed();
            if round > 0 {
                times[h].0.push(sandbox);
                times[h].1.push(running);
            }
            k.stop(&id, 0);
            k.remove(&id);
            k.remove_pod(&pod);
        }
    }
    let [rt, runc] = [0, 1].map(|h| {
        let (s, r) = &mut times[h];
        (median(s), median(r))
    });
    eprintln!(
        "cri pod start latency, median of {ROUNDS} (rt = {}):\n\
         \x20 RunPodSandbox           rt {:7.1} ms  runc {:7.1} ms  rt/runc {:.2}\n\
         \x20 → container running     rt {:7.1} ms  runc {:7.1} ms  rt/runc {:.2}",
        rt_bin().display(),
        ms(rt.0),
        ms(runc.0),
        ms(rt.0) / ms(runc.0),
        ms(rt.1),
        ms(runc.1),
        ms(rt.1) / ms(runc.1),
    );
}
