//! The systemd driver: the container's cgroup is a transient unit systemd makes and removes
//! (a scope with `Delegate=yes`, so what is below it stays rt's), asked for over D-Bus as
//! runc asks. Limits are sent as unit properties and written to cgroupfs too. A rootless
//! caller's unit is made by the user's own systemd (user.rs), in its part of the tree.
pub mod dbus;
mod props;
pub mod unit;
pub mod user;

use super::{Driver, DriverKind, Mode};
use anyhow::{bail, Context, Result};
use dbus::{Bus, Call, Value};
use oci_spec::runtime::LinuxResources;
use std::sync::Mutex;
use std::time::Duration;
pub use unit::Unit;

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long systemd may take for a job (runc's figure).
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// sd_booted(3): whether systemd is PID 1 here.
pub fn is_running() -> bool {
    std::fs::symlink_metadata("/run/systemd/system").is_ok_and(|m| m.is_dir())
}

/// The refusal runc gives on a host without systemd; callers match it.
pub const NOT_RUNNING: &str =
    "systemd not running on this host, cannot use systemd cgroups manager";
/// runc's refusal of a rootless caller's systemd driver where cgroup v1 is mounted: only a
/// pure cgroup v2 tree is delegated to the user's systemd.
pub const NO_ROOTLESS_V1: &str = "cannot use rootless systemd cgroups manager on cgroup v1";

pub struct Systemd {
    pub unit: Unit,
    mode: Mode,
    /// The user's own systemd (rootless), not the system's.
    user: bool,
    /// `org.systemd.property.*` annotations, sent with the unit at its start.
    extra: Vec<props::Prop>,
    /// Connected at the first call: kill, ps, exec and pause never need the bus.
    bus: Mutex<Option<Bus>>,
}

impl std::fmt::Debug for Systemd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Systemd")
            .field("unit", &self.unit)
            .field("user", &self.user)
            .finish()
    }
}

impl Systemd {
    /// `user`: the unit is the user's systemd's (a rootless caller, as runc decides it).
    pub fn new<'a>(
        unit: Unit,
        mode: Mode,
        annotations: impl Iterator<Item = (&'a String, &'a String)>,
        user: bool,
    ) -> Result<Systemd> {
        if !is_running() {
            bail!(NOT_RUNNING);
        }
        if user && mode != Mode::V2 {
            bail!(NO_ROOTLESS_V1);
        }
        Ok(Systemd {
            unit,
            mode,
            user,
            extra: props::from_annotations(annotations)?,
            bus: Mutex::new(None),
        })
    }

    fn with_bus<T>(&self, f: impl FnOnce(&mut Bus) -> Result<T>) -> Result<T> {
        let mut guard = self.bus.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            let mut bus = match self.user {
                true => Bus::user().context("connecting to the user's systemd")?,
                false => Bus::system().context("connecting to systemd")?,
            };
            // Only the bus daemon needs to be told; a direct connection gets every signal.
            if bus.via_daemon {
                bus.add_match(&format!(
                    "type='signal',sender='{SYSTEMD}',interface='{MANAGER}',member='JobRemoved'"
                ))?;
            }
            *guard = Some(bus);
        }
        f(guard.as_mut().expect("connected above"))
    }

    fn manager_call(&self, member: &str, args: &[Value]) -> Result<Vec<Value>> {
        self.with_bus(|b| {
            b.call(&Call {
                dest: SYSTEMD,
                path: MANAGER_PATH,
                interface: MANAGER,
                member,
                args,
            })
        })
    }

    /// Runs a job-returning method and waits for the job's result ("done", "failed", ...).
    fn job(&self, member: &str, args: &[Value]) -> Result<String> {
        let reply = self.manager_call(member, args)?;
        let job = reply
            .first()
            .and_then(Value::as_str)
            .with_context(|| format!("{member}: no job path in systemd's reply"))?
            .to_string();
        self.with_bus(|b| {
            b.wait_signal(JOB_TIMEOUT, |m| {
                if m.member.as_deref() != Some("JobRemoved") {
                    return None;
                }
                match &m.body[..] {
                    [_, Value::Path(p), _, Value::Str(result)] if *p == job => Some(result.clone()),
                    _ => None,
                }
            })
        })
        .with_context(|| {
            format!(
                "waiting for systemd's job {job} ({member} {})",
                self.unit.name
            )
        })
    }

    fn features(&self, r: &LinuxResources) -> props::Features {
        let version = if props::needs_features(r) {
            self.version().unwrap_or_else(|e| {
                crate::logging::warn(&format!("unable to get systemd version: {e:#}"));
                0
            })
        } else {
            0
        };
        props::Features {
            quota_period: version >= 242,
            cpuset: version >= 244,
        }
    }

    /// A string property of the manager.
    fn manager_property(&self, name: &str) -> Result<String> {
        let reply = self.with_bus(|b| {
            b.call(&Call {
                dest: SYSTEMD,
                path: MANAGER_PATH,
                interface: "org.freedesktop.DBus.Properties",
                member: "Get",
                args: &[Value::str(MANAGER), Value::str(name)],
            })
        })?;
        Ok(match reply.first() {
            Some(Value::Variant(v)) => v.as_str().unwrap_or("").to_string(),
            _ => String::new(),
        })
    }

    /// Where the manager's own tree is below the cgroup root, which the unit's path is
    /// relative to: "" for the system's, "/user.slice/user-UID.slice/user@UID.service" for a
    /// user's (asked of it, as runc asks).
    pub fn manager_cgroup(&self) -> Result<String> {
        if !self.user {
            return Ok(String::new());
        }
        let cg = self
            .manager_property("ControlGroup")
            .context("asking the user's systemd for its ControlGroup")?;
        if !cg.starts_with('/') {
            bail!("the user's systemd runs in no cgroup of its own ({cg:?})");
        }
        Ok(cg.trim_end_matches('/').to_string())
    }

    fn version(&self) -> Result<u32> {
        let text = self.manager_property("Version")?;
        // "252.30-1~deb12u2", "v256", "245 (245.4-4ubuntu3)"
        let digits: String = text
            .trim_start_matches('v')
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits
            .parse()
            .with_context(|| format!("systemd version {text:?}"))
    }

    fn reset_failed(&self) {
        let _ = self.manager_call("ResetFailedUnit", &[Value::str(&self.unit.name)]);
    }
}

fn props_value(list: Vec<props::Prop>) -> Value {
    Value::Array(
        "(sv)".into(),
        list.into_iter()
            .map(|(n, v)| Value::Struct(vec![Value::Str(n), Value::Variant(Box::new(v))]))
            .collect(),
    )
}

impl Driver for Systemd {
    fn kind(&self) -> DriverKind {
        match self.user {
            true => DriverKind::SystemdUser,
            false => DriverKind::Systemd,
        }
    }

    fn makes_dirs(&self) -> bool {
        false
    }

    fn attach(&self, pid: i32, r: Option<&LinuxResources>) -> Result<()> {
        let u = &self.unit;
        let mut p: Vec<props::Prop> = vec![(
            "Description".into(),
            Value::Str(format!("rt container {}", u.name)),
        )];
        if u.is_slice() {
            p.push(("Wants".into(), Value::Str(u.slice.clone())));
        } else {
            p.push(("Slice".into(), Value::Str(u.slice.clone())));
            p.push(("Delegate".into(), Value::Bool(true)));
        }
        p.push((
            "PIDs".into(),
            Value::Array("u".into(), vec![Value::U32(pid as u32)]),
        ));
        let io = if self.mode == Mode::V2 {
            "IOAccounting"
        } else {
            "BlockIOAccounting"
        };
        for flag in ["MemoryAccounting", "CPUAccounting", io, "TasksAccounting"] {
            p.push((flag.into(), Value::Bool(true)));
        }
        p.push(("DefaultDependencies".into(), Value::Bool(false)));
        if let Some(r) = r {
            p.extend(props::resources(r, self.mode, &self.features(r))?);
        }
        p.extend(self.extra.iter().cloned());
        let args = [
            Value::str(&u.name),
            Value::str("replace"),
            props_value(p),
            Value::Array("(sa(sv))".into(), Vec::new()),
        ];
        match self.job("StartTransientUnit", &args) {
            Ok(r) if r == "done" => Ok(()),
            Ok(r) => {
                self.reset_failed();
                bail!("error creating systemd unit `{}`: got `{r}`", u.name)
            }
            // runc takes an existing unit as it is (a restarted container in a kept slice).
            Err(e) if format!("{e:#}").contains("org.freedesktop.systemd1.UnitExists") => Ok(()),
            Err(e) => Err(e).with_context(|| format!("unable to start unit {:?}", u.name)),
        }
    }

    fn update(&self, r: &LinuxResources) -> Result<()> {
        let p = props::resources(r, self.mode, &self.features(r))?;
        if p.is_empty() {
            return Ok(());
        }
        self.manager_call(
            "SetUnitProperties",
            &[
                Value::str(&self.unit.name),
                Value::Bool(true),
                props_value(p),
            ],
        )
        .with_context(|| format!("unable to set unit properties of {}", self.unit.name))
        .map(drop)
    }

    fn destroy(&self) -> Result<()> {
        match self.job(
            "StopUnit",
            &[Value::str(&self.unit.name), Value::str("replace")],
        ) {
            Ok(r) if r != "done" => crate::logging::warn(&format!(
                "error removing unit `{}`: got `{r}`. Continuing...",
                self.unit.name
            )),
            Ok(_) => {}
            // Gone already: a scope ends by itself when its last process exits.
            Err(e) if format!("{e:#}").contains("org.freedesktop.systemd1.NoSuchUnit") => {
                return Ok(())
            }
            Err(e) => return Err(e),
        }
        self.reset_failed();
        Ok(())
    }
}
