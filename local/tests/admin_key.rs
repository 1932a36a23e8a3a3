//! `syncaroo-local serve` never prints the admin key: a generated one is in
//! a file only the user can read, and the log says where.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn the_admin_key_is_in_a_private_file_not_in_the_logs() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_syncaroo-local"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the runner starts");
    let mut logged = Vec::new();
    let mut admin_line = None;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        logged.push(line.clone());
        if line.starts_with("admin: ") {
            admin_line = Some(line);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let admin_line = admin_line.unwrap_or_else(|| panic!("no admin line in {logged:?}"));
    let path = admin_line
        .split("the password is in ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{admin_line}"));
    let key = std::fs::read_to_string(path).unwrap();
    assert!(key.len() >= 32, "a generated key: {} chars", key.len());
    for line in &logged {
        assert!(!line.contains(&key), "the key reached the log: {line}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{path}");
    }
    std::fs::remove_file(path).unwrap();
}
