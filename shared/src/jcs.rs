//! RFC 8785 JSON Canonicalization Scheme: the byte string the webhook hash
//! is computed over. Object members sorted by their UTF-16 code units, no
//! whitespace, strings with the minimal escapes of ECMAScript's
//! `JSON.stringify`, numbers as ECMAScript prints a double. The work is
//! `serde_json_canonicalizer`'s; the body must have been parsed with
//! serde_json's `float_roundtrip` (the workspace enables it), so each
//! number is the double a conformant signer saw.

use serde_json::Value;

pub fn canonicalize(v: &Value) -> String {
    // Serialising a serde_json::Value cannot fail: its keys are strings
    // and its numbers finite.
    serde_json_canonicalizer::to_string(v).expect("a JSON value canonicalises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_and_drops_whitespace() {
        let v = json!({"b": 1, "a": [true, null, "x"], "c": {"z": 1, "y": 2}});
        assert_eq!(
            canonicalize(&v),
            r#"{"a":[true,null,"x"],"b":1,"c":{"y":2,"z":1}}"#
        );
    }

    #[test]
    fn rfc8785_sorting_is_by_utf16_code_units() {
        // From RFC 8785 section 3.2.3: "\u20ac" (€) sorts before "\ud83d\ude00" (😀)
        // in UTF-16 although not in UTF-32 order of the first char... and
        // "\r" before "1".
        let v: Value = serde_json::from_str(r#"{"€":1,"😀":2,"\r":3,"1":4,"ö":5}"#).unwrap();
        assert_eq!(
            canonicalize(&v),
            "{\"\\r\":3,\"1\":4,\"ö\":5,\"€\":1,\"😀\":2}"
        );
    }

    #[test]
    fn numbers_print_like_ecmascript() {
        let cases = [
            ("1.0", "1"),
            ("-0.0", "0"),
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("0.000001", "0.000001"),
            ("1e-7", "1e-7"),
            ("123.456", "123.456"),
            ("-1.5e-10", "-1.5e-10"),
            ("4.5", "4.5"),
            ("333333333.3333333", "333333333.3333333"),
            // RFC 8785 section 3.2.2.3: integers beyond 2^53 are doubles.
            ("9007199254740993", "9007199254740992"),
            ("-9007199254740993", "-9007199254740992"),
            ("18446744073709551615", "18446744073709552000"),
            // 17 significant digits must parse exactly (float_roundtrip).
            ("0.9392884321352825", "0.9392884321352825"),
            ("1795948873.8246393", "1795948873.8246393"),
        ];
        for (input, want) in cases {
            let v: Value = serde_json::from_str(input).unwrap();
            assert_eq!(canonicalize(&v), want, "{input}");
        }
    }

    /// RFC 8785 Appendix B (values) and section 3.2.2 example.
    #[test]
    fn rfc8785_examples() {
        let input = r#"{
            "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#;
        let v: Value = serde_json::from_str(input).unwrap();
        assert_eq!(
            canonicalize(&v),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
        // Appendix B's IEEE-754 table (a selection: hex bits -> text).
        for (bits, want) in [
            (0x0000000000000000u64, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ] {
            let v = Value::from(f64::from_bits(bits));
            assert_eq!(canonicalize(&v), want, "{bits:#x}");
        }
    }

    #[test]
    fn escapes_minimally() {
        let v = json!("a\"b\\c\n\u{1}é/");
        assert_eq!(canonicalize(&v), "\"a\\\"b\\\\c\\n\\u0001é/\"");
    }
}
