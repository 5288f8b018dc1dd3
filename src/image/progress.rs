//! Per-layer byte counts on a terminal; silent otherwise.
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Item {
    label: String,
    done: Arc<AtomicU64>,
    total: u64,
}

#[derive(Default)]
struct Inner {
    items: Mutex<Vec<Item>>,
    stop: AtomicBool,
}

/// A status line redrawn a few times a second while downloads run (stderr, only on a tty).
pub struct Progress {
    inner: Option<Arc<Inner>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress {
                inner: None,
                thread: None,
            };
        }
        let inner = Arc::new(Inner::default());
        let i2 = inner.clone();
        let thread = std::thread::spawn(move || {
            while !i2.stop.load(Ordering::Relaxed) {
                draw(&i2);
                // Parked rather than asleep, so that the end of the pull wakes us at once.
                std::thread::park_timeout(Duration::from_millis(200));
            }
            if draw(&i2) {
                eprintln!();
            }
        });
        Progress {
            inner: Some(inner),
            thread: Some(thread),
        }
    }

    /// Registers a blob; the returned counter is bumped as its bytes arrive.
    pub fn track(&self, digest: &str, total: u64) -> Arc<AtomicU64> {
        let done = Arc::new(AtomicU64::new(0));
        if let Some(i) = &self.inner {
            let label = digest
                .trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect();
            i.items.lock().unwrap().push(Item {
                label,
                done: done.clone(),
                total,
            });
        }
        done
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(i) = &self.inner {
            i.stop.store(true, Ordering::Relaxed);
        }
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn human(n: u64) -> String {
    const U: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut f = n as f64;
    let mut u = 0;
    while f >= 1000.0 && u < U.len() - 1 {
        f /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{f:.1}{}", U[u])
    }
}

pub fn human_size(n: u64) -> String {
    human(n)
}

/// Redraws the status line; false when there is nothing to show.
fn draw(i: &Inner) -> bool {
    let items = i.items.lock().unwrap();
    if items.is_empty() {
        return false;
    }
    // Finished layers collapse into the count, so the line stays short enough not to wrap.
    let done = items
        .iter()
        .filter(|it| it.done.load(Ordering::Relaxed) >= it.total)
        .count();
    let mut parts = vec![format!("[{done}/{} layers]", items.len())];
    parts.extend(
        items
            .iter()
            .filter(|it| it.done.load(Ordering::Relaxed) < it.total)
            .take(3)
            .map(|it| {
                format!(
                    "{} {}/{}",
                    it.label,
                    human(it.done.load(Ordering::Relaxed)),
                    human(it.total)
                )
            }),
    );
    let mut e = std::io::stderr().lock();
    let _ = write!(e, "\r\x1b[K{}", parts.join("  "));
    let _ = e.flush();
    true
}

/// A reader that reports how far it got.
pub struct Counted<R> {
    pub inner: R,
    pub done: Arc<AtomicU64>,
}

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
