//! Whether rt runs in a user namespace other than the initial one: rootless mode decides by it
//! (libcontainer), and so does the uid the user's systemd knows the caller by (cgroups).

/// The initial user namespace maps every id to itself (`0 0 4294967295`); that is how runc
/// tells them apart.
pub fn running_in_userns() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => !is_initial_map(&map),
        // no uid_map: a kernel without user namespaces
        Err(_) => false,
    }
}

pub fn is_initial_map(map: &str) -> bool {
    let lines: Vec<Vec<&str>> = map
        .lines()
        .map(|l| l.split_whitespace().collect())
        .filter(|f: &Vec<&str>| !f.is_empty())
        .collect();
    matches!(lines.as_slice(), [only] if only[..] == ["0", "0", "4294967295"])
}
