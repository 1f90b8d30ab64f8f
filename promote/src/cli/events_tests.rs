//! CONTRACTS.md's event table against the structs, field by field.

use std::collections::{BTreeMap, BTreeSet};

use serde::ser::{self, Impossible, Serialize};

use super::*;

/// The top-level field names a value serializes, including those it skips
/// (`skip_serializing_if`): what serde itself would print for some value of the type.
#[derive(Default)]
struct FieldNames(BTreeSet<String>);

#[derive(Debug)]
struct NotAStruct(String);

impl std::fmt::Display for NotAStruct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for NotAStruct {}
impl ser::Error for NotAStruct {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        NotAStruct(msg.to_string())
    }
}

fn not_a_struct<T>() -> Result<T, NotAStruct> {
    Err(NotAStruct("an event must serialize as a struct".into()))
}

impl ser::SerializeStruct for &mut FieldNames {
    type Ok = ();
    type Error = NotAStruct;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        _: &T,
    ) -> Result<(), NotAStruct> {
        self.0.insert(key.into());
        Ok(())
    }
    fn skip_field(&mut self, key: &'static str) -> Result<(), NotAStruct> {
        self.0.insert(key.into());
        Ok(())
    }
    fn end(self) -> Result<(), NotAStruct> {
        Ok(())
    }
}

/// A struct with a `#[serde(flatten)]` field serializes as a map.
impl ser::SerializeMap for &mut FieldNames {
    type Ok = ();
    type Error = NotAStruct;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), NotAStruct> {
        match serde_json::to_value(key) {
            Ok(serde_json::Value::String(k)) => {
                self.0.insert(k);
                Ok(())
            }
            _ => not_a_struct(),
        }
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, _: &T) -> Result<(), NotAStruct> {
        Ok(())
    }
    fn end(self) -> Result<(), NotAStruct> {
        Ok(())
    }
}

macro_rules! refuse {
    ($($f:ident($($t:ty),*)),*) => {$(
        fn $f(self, $(_: $t),*) -> Result<(), NotAStruct> { not_a_struct() }
    )*};
}

impl<'a> ser::Serializer for &'a mut FieldNames {
    type Ok = ();
    type Error = NotAStruct;
    type SerializeSeq = Impossible<(), NotAStruct>;
    type SerializeTuple = Impossible<(), NotAStruct>;
    type SerializeTupleStruct = Impossible<(), NotAStruct>;
    type SerializeTupleVariant = Impossible<(), NotAStruct>;
    type SerializeMap = &'a mut FieldNames;
    type SerializeStruct = &'a mut FieldNames;
    type SerializeStructVariant = Impossible<(), NotAStruct>;

    refuse!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str)
    );
    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), NotAStruct> {
        not_a_struct()
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), NotAStruct> {
        not_a_struct()
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), NotAStruct> {
        not_a_struct()
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotAStruct> {
        not_a_struct()
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotAStruct> {
        not_a_struct()
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotAStruct> {
        not_a_struct()
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotAStruct> {
        not_a_struct()
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotAStruct> {
        Ok(self)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, NotAStruct> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotAStruct> {
        not_a_struct()
    }
}

fn fields<E: Event>(e: &E) -> (&'static str, BTreeSet<String>) {
    let mut names = FieldNames::default();
    e.serialize(&mut names)
        .expect("an event serializes as a struct");
    // The probe's report carries its own name and version; the stream's are the ones printed.
    names.0.remove("event");
    names.0.remove("v");
    (E::NAME, names.0)
}

/// Every event's fields, from the structs.
fn from_code() -> BTreeMap<&'static str, BTreeSet<String>> {
    let report = probe::Stats::new(1.0).expecting(200).report();
    let all = [
        fields(&Plan::default()),
        fields(&AliasUpdated::default()),
        fields(&BakeStarted::default()),
        fields(&Bake::default()),
        fields(&BakeExtended::default()),
        fields(&Held::default()),
        fields(&RolledBack::default()),
        fields(&Interrupted::default()),
        fields(&DryRun::default()),
        fields(&Done::default()),
        fields(&DeploymentCreated::default()),
        fields(&Deployment::default()),
        fields(&DeploymentStopped::default()),
        fields(&CodeUploaded::default()),
        fields(&Published::default()),
        fields(&Release::default()),
        fields(&StageStatus::default()),
        fields(&StageError::default()),
        fields(&Checked::default()),
        fields(&ProbeReport {
            function: Some(String::new()),
            target: String::new(),
            title: String::new(),
            report: &report,
        }),
        fields(&Error::default()),
    ];
    let map: BTreeMap<_, _> = all.into_iter().collect();
    let names: BTreeSet<_> = NAMES.iter().copied().collect();
    assert_eq!(
        map.keys().copied().collect::<BTreeSet<_>>(),
        names,
        "the test lists every event"
    );
    map
}

/// The top-level field names in a cell of CONTRACTS.md's "other fields" column: the
/// backticked names outside parentheses (`engine: "codedeploy"` names `engine`); what is
/// inside parentheses describes a field's value.
fn documented_fields(cell: &str) -> BTreeSet<String> {
    let (mut depth, mut in_code, mut token) = (0i32, false, String::new());
    let mut out = BTreeSet::new();
    for c in cell.chars() {
        match (c, in_code) {
            ('`', false) => {
                in_code = true;
                token.clear();
            }
            ('`', true) => {
                in_code = false;
                let name: String = token
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                    .collect();
                let rest = &token[name.len()..];
                if depth == 0 && !name.is_empty() && (rest.is_empty() || rest.starts_with(':')) {
                    out.insert(name);
                }
            }
            (_, true) => token.push(c),
            ('(', false) => depth += 1,
            (')', false) => depth -= 1,
            _ => {}
        }
    }
    out
}

/// Every event's fields, from CONTRACTS.md.
fn from_contracts() -> BTreeMap<String, BTreeSet<String>> {
    let contracts = include_str!("../../../CONTRACTS.md");
    let section = contracts
        .split("\n## JSON event stream\n")
        .nth(1)
        .expect("CONTRACTS.md has a \"JSON event stream\" section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut out = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        // A `|` inside backticks is escaped (`\|`) in the markdown.
        let cells: Vec<String> = line
            .replace("\\|", "\u{1}")
            .split('|')
            .map(|c| c.replace('\u{1}', "|").trim().to_string())
            .collect();
        if cells[2] == "printed by" {
            continue; // the header
        }
        let name = cells[1].trim_matches('`').to_string();
        let fields = documented_fields(&cells[4]);
        assert!(out.insert(name.clone(), fields).is_none(), "{name} twice");
    }
    out
}

#[test]
fn contracts_md_lists_every_event_with_its_fields() {
    let code = from_code();
    let doc = from_contracts();
    let code_names: BTreeSet<String> = code.keys().map(|k| k.to_string()).collect();
    let doc_names: BTreeSet<String> = doc.keys().cloned().collect();
    assert_eq!(
        doc_names, code_names,
        "events in CONTRACTS.md (left) and in promote/src/cli/events.rs (right)"
    );
    let mut wrong = Vec::new();
    for (name, fields) in &code {
        let documented = &doc[*name];
        if documented != fields {
            wrong.push(format!(
                "{name}: only in CONTRACTS.md {:?}, only in the struct {:?}",
                documented.difference(fields).collect::<Vec<_>>(),
                fields.difference(documented).collect::<Vec<_>>()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_parser_reads_names_not_values() {
    let got = documented_fields(
        "`stage`, `candidate_weight` (percent, or null before `x`), `evidence` (as in `bake`); on a CodeDeploy stage `engine: \"codedeploy\"`, `actions` (`[{action: write\\|bake}]`)",
    );
    let want: BTreeSet<String> = ["stage", "candidate_weight", "evidence", "engine", "actions"]
        .map(String::from)
        .into();
    assert_eq!(got, want);
}

#[test]
fn an_event_prints_its_name_first() {
    let e = RolledBack {
        stage: "live".into(),
        reason: "r".into(),
        version: "3".into(),
    };
    assert_eq!(
        e.to_value().to_string(),
        r#"{"event":"rolled_back","stage":"live","reason":"r","version":"3"}"#
    );
    let b = BakeStarted {
        stage: "live".into(),
        step: "step 1/1 at 10%".into(),
        bake_seconds: Seconds(Duration::from_millis(1500)),
    };
    assert_eq!(b.to_value()["bake_seconds"], 1.5);
}
