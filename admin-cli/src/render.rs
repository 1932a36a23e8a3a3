//! Tables for people; `--json` prints the values as they are.

use serde_json::Value;
use syncaroo_shared::Error;

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`; empty when absent.
fn time(v: &Value) -> String {
    v.as_i64()
        .map(|s| format!("{}Z", syncaroo_shared::clock::guide_datetime(s)))
        .unwrap_or_default()
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Rows under a header, each column as wide as its widest cell.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

fn connection_row(c: &Value) -> Vec<String> {
    vec![
        text(&c["connectionId"]),
        text(&c["userId"]),
        text(&c["status"]),
        time(&c["createdAt"]),
        time(&c["confirmedAt"]),
        time(&c["revokedAt"]),
        time(&c["lastWebhookAt"]),
    ]
}

const CONNECTION_HEADER: [&str; 7] = [
    "CONNECTION",
    "USER",
    "STATUS",
    "CREATED",
    "CONFIRMED",
    "REVOKED",
    "LAST WEBHOOK",
];

/// A command's value for a person to read.
pub fn human(v: &Value) -> String {
    if let Some(list) = v["connections"].as_array() {
        return table(
            &CONNECTION_HEADER,
            list.iter().map(connection_row).collect(),
        );
    }
    if v.get("connectionId").is_some() && v.get("status").is_some() {
        return table(&CONNECTION_HEADER, vec![connection_row(v)]);
    }
    for (key, last, header) in [
        ("deadLetters", "reason", "REASON"),
        ("replayed", "result", "RESULT"),
    ] {
        if let Some(list) = v[key].as_array() {
            let rows = list
                .iter()
                .map(|d| {
                    ["messageId", "kind", "what", last]
                        .iter()
                        .map(|k| text(&d[*k]))
                        .collect()
                })
                .collect();
            return table(&["MESSAGE", "KIND", "WHAT", header], rows);
        }
    }
    match v.as_object() {
        Some(o) => o
            .iter()
            .map(|(k, val)| {
                let shown = if k.ends_with("At") {
                    time(val)
                } else {
                    text(val)
                };
                format!("{k}: {shown}\n")
            })
            .collect(),
        None => format!("{v}\n"),
    }
}

/// An error for a person: what went wrong, never a secret (errors carry
/// none).
pub fn error(e: &Error) -> String {
    match e {
        Error::NotFound => "no such connection".into(),
        // The SDK's context ends with the raw response: keep the message.
        other => {
            let s = other.to_string();
            s.split(" (ServiceError(").next().unwrap_or(&s).to_string()
        }
    }
}
