//! The README's first command, `syncaroo-local demo`, the binary itself:
//! the whole protocol once on the embedded store, exit code 0, every line
//! a PASS, and no metric line in the way.

#[test]
fn the_demo_passes_every_step() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_syncaroo-local"))
        .arg("demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(
        stdout.contains("change events (PutEvents entries)"),
        "{stdout}"
    );
}
