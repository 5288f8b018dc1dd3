//! Exec and Attach as `kubectl exec`/`attach` reach them: the CRI call returns a URL of
//! containerd's streaming server, and the client speaks Kubernetes' websocket channel protocol
//! (`v4.channel.k8s.io`) to it. Each binary message starts with its channel: 1 stdout, 2
//! stderr, 3 the final status as JSON. The client below is the least of RFC 6455 that needs:
//! a handshake, and unmasked frames read from the server (it sends none but a close).

use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// What came over the channels until the server closed, or until `enough` said stop.
#[derive(Debug, Default)]
struct Streams {
    stdout: String,
    stderr: String,
    status: String,
}

fn stream(url: &str, enough: impl Fn(&Streams) -> bool) -> Streams {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut tcp = TcpStream::connect(host).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(tcp);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("HTTP/1.1 101"),
        "no websocket upgrade: {line:?}"
    );
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
    }
    let mut got = Streams::default();
    while !enough(&got) {
        let mut head = [0u8; 2];
        if r.read_exact(&mut head).is_err() {
            break;
        }
        let opcode = head[0] & 0x0f;
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                r.read_exact(&mut b).unwrap();
                u16::from_be_bytes(b) as usize
            }
            127 => {
                let mut b = [0u8; 8];
                r.read_exact(&mut b).unwrap();
                u64::from_be_bytes(b) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        r.read_exact(&mut payload).unwrap();
        match (opcode, payload.split_first()) {
            (8, _) => break,
            (2, Some((chan, data))) => {
                let data = String::from_utf8_lossy(data);
                match chan {
                    1 => got.stdout += &data,
                    2 => got.stderr += &data,
                    3 => got.status += &data,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    got
}

fn exec_url(k: &Kube, id: &str, cmd: &[&str], tty: bool) -> String {
    let r = k.exec(cri::ExecRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty,
        // kubectl sends stdin with a terminal (-it); containerd 1.6 drops a terminal's
        // output when there is none ("Failed to pipe stdout", the same with runc).
        stdin: tty,
        stdout: true,
        stderr: !tty,
    });
    k.ok("Exec", r).url
}

#[test]
fn cri_exec_and_attach_stream() {
    let k = kube_or_skip!("stream");
    let pod = k.run_pod(k.pod_config("stream", false), "rt");
    let id = k.run_container(
        &pod,
        Spec {
            name: "ticker",
            args: &["sh", "-c", "while true; do echo tick; sleep 0.2; done"],
            ..Default::default()
        },
    );
    k.wait_state(&id, cri::ContainerState::ContainerRunning);

    // Exec: both streams, then the exit status in the status channel.
    let url = exec_url(
        &k,
        &id,
        &["sh", "-c", "echo to-out; echo to-err >&2; exit 3"],
        false,
    );
    let got = stream(&url, |_| false);
    assert_eq!(
        (got.stdout.as_str(), got.stderr.as_str()),
        ("to-out\n", "to-err\n")
    );
    let status: Value = serde_json::from_str(&got.status).unwrap();
    assert_eq!(status["reason"], "NonZeroExitCode", "{status}");
    assert_eq!(status["details"]["causes"][0]["message"], "3", "{status}");
    let got = stream(&exec_url(&k, &id, &["true"], false), |_| false);
    let status: Value = serde_json::from_str(&got.status).unwrap();
    assert_eq!(status["status"], "Success", "{status}");

    // Exec with a terminal: the runtime's exec gets a console socket, the process a pty.
    let url = exec_url(
        &k,
        &id,
        &["sh", "-c", "tty; [ -t 0 ] && [ -t 1 ] && echo is-a-tty"],
        true,
    );
    let got = stream(&url, |_| false);
    assert!(
        got.stdout.contains("/dev/pts/"),
        "{got:?}\n{}",
        k.scene().story()
    );
    assert!(got.stdout.contains("is-a-tty"), "{got:?}");
    let argv = k.scene().argv();
    assert!(
        argv.lines()
            .any(|l| l.contains(" exec ") && l.contains("--console-socket ") && l.ends_with(&id)),
        "no exec with a console socket: {argv}"
    );

    // Attach: the container's own stdout, live.
    let r = k.attach(cri::AttachRequest {
        container_id: id.clone(),
        stdout: true,
        stderr: true,
        ..Default::default()
    });
    let got = stream(&k.ok("Attach", r).url, |s| s.stdout.contains("tick\n"));
    assert!(got.stdout.contains("tick"), "{got:?}");

    k.stop(&id, 0);
    k.remove(&id);
    k.remove_pod(&pod);
}
