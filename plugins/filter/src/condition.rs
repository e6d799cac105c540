//! Conditions checked against the input schema, and their evaluation over records.
//!
//! Two-valued logic: `==` and `!=` treat null as a value of its own (`null == null`
//! holds, `rating != 5` holds for a null rating); ordering and string tests involving
//! a null are false, so `not (rating > 5)` holds for a null rating.

use std::cmp::Ordering;

use weft_guest::avro::Schema;
use weft_guest::avro::types::Value;
use weft_guest::{FieldPath, Record};

use crate::parse::{Ast, CmpOp, Error, Literal, Operand, OperandKind, StrOp};

/// A condition whose fields exist and whose comparisons make sense for their types.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Or(Box<Condition>, Box<Condition>),
    And(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
    Cmp {
        op: CmpOp,
        left: Term,
        right: Term,
    },
    Str {
        op: StrOp,
        left: Term,
        right: Term,
    },
    /// `array contains value`.
    Element {
        list: FieldPath,
        item: Term,
    },
    IsNull {
        term: Term,
        negated: bool,
    },
    Truth(Term),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Field(FieldPath),
    Literal(Literal),
}

/// What the type checker knows of an operand.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Number,
    Str { symbols: Option<Vec<String>> },
    Bool,
    Null,
    List(Box<Kind>),
}

struct Typed {
    term: Term,
    kind: Kind,
    /// `field 'year' (int)` or `a number`, for messages.
    what: String,
}

impl Condition {
    /// Checks `ast` against the record `schema`.
    pub fn compile(ast: Ast, schema: &Schema) -> Result<Self, Error> {
        Ok(match ast {
            Ast::Or(l, r) => Condition::Or(
                Box::new(Self::compile(*l, schema)?),
                Box::new(Self::compile(*r, schema)?),
            ),
            Ast::And(l, r) => Condition::And(
                Box::new(Self::compile(*l, schema)?),
                Box::new(Self::compile(*r, schema)?),
            ),
            Ast::Not(inner) => Condition::Not(Box::new(Self::compile(*inner, schema)?)),
            Ast::Truth(Operand {
                kind: OperandKind::Group(inner),
                ..
            }) => Self::compile(*inner, schema)?,
            Ast::Truth(operand) => {
                let column = operand.column;
                let typed = typed(operand, schema)?;
                if typed.kind != Kind::Bool {
                    return Err(Error::at(
                        column,
                        format!("{} is not a condition; compare it with a value", typed.what),
                    ));
                }
                Condition::Truth(typed.term)
            }
            Ast::IsNull { operand, negated } => {
                let term = match operand.kind {
                    // Any field can be null-tested, records and maps included.
                    OperandKind::Field(name) => Term::Field(
                        FieldPath::resolve(schema, &name)
                            .map_err(|e| Error::at(operand.column, e.message))?,
                    ),
                    _ => typed(operand, schema)?.term,
                };
                Condition::IsNull { term, negated }
            }
            Ast::Cmp { op, left, right } => {
                let column = left.column;
                let (left, right) = (typed(left, schema)?, typed(right, schema)?);
                check_cmp(op, &left, &right).map_err(|message| Error::at(column, message))?;
                Condition::Cmp {
                    op,
                    left: left.term,
                    right: right.term,
                }
            }
            Ast::Str { op, left, right } => {
                let column = left.column;
                let (left, right) = (typed(left, schema)?, typed(right, schema)?);
                match (&left.kind, &right.kind, op) {
                    (Kind::Str { .. }, Kind::Str { .. }, _) => Condition::Str {
                        op,
                        left: left.term,
                        right: right.term,
                    },
                    (Kind::List(item), kind, StrOp::Contains) if same_kind(item, kind) => {
                        match left.term {
                            Term::Field(list) => Condition::Element {
                                list,
                                item: right.term,
                            },
                            Term::Literal(_) => unreachable!("only fields are lists"),
                        }
                    }
                    (Kind::List(_), _, StrOp::Contains) => {
                        return Err(Error::at(
                            column,
                            format!("{} cannot contain {}", left.what, right.what),
                        ));
                    }
                    _ => {
                        return Err(Error::at(
                            column,
                            format!(
                                "'{}' needs two strings, not {} and {}",
                                op.name(),
                                left.what,
                                right.what
                            ),
                        ));
                    }
                }
            }
        })
    }

    /// Whether `record` satisfies the condition.
    /// The fields the condition tests, as written (dotted paths), each once, in order of
    /// first appearance.
    pub fn fields(&self) -> Vec<String> {
        let mut fields = Vec::new();
        self.collect_fields(&mut fields);
        fields
    }

    fn collect_fields(&self, out: &mut Vec<String>) {
        let mut add = |path: &FieldPath| {
            if !out.iter().any(|f| f == path.as_str()) {
                out.push(path.as_str().to_owned());
            }
        };
        match self {
            Condition::Or(l, r) | Condition::And(l, r) => {
                l.collect_fields(out);
                r.collect_fields(out);
            }
            Condition::Not(inner) => inner.collect_fields(out),
            Condition::Cmp { left, right, .. } | Condition::Str { left, right, .. } => {
                for term in [left, right] {
                    if let Term::Field(path) = term {
                        add(path);
                    }
                }
            }
            Condition::Element { list, item } => {
                add(list);
                if let Term::Field(path) = item {
                    add(path);
                }
            }
            Condition::IsNull { term, .. } | Condition::Truth(term) => {
                if let Term::Field(path) = term {
                    add(path);
                }
            }
        }
    }

    pub fn matches(&self, record: &Record) -> bool {
        match self {
            Condition::Or(l, r) => l.matches(record) || r.matches(record),
            Condition::And(l, r) => l.matches(record) && r.matches(record),
            Condition::Not(inner) => !inner.matches(record),
            Condition::Cmp { op, left, right } => {
                compare(*op, scalar(left, record), scalar(right, record))
            }
            Condition::Str { op, left, right } => {
                match (scalar(left, record), scalar(right, record)) {
                    (Scalar::Str(l), Scalar::Str(r)) => match op {
                        StrOp::Contains => l.contains(r),
                        StrOp::StartsWith => l.starts_with(r),
                        StrOp::EndsWith => l.ends_with(r),
                    },
                    _ => false,
                }
            }
            Condition::Element { list, item } => match record.get(list) {
                Some(Value::Array(items)) => {
                    let item = scalar(item, record);
                    items
                        .iter()
                        .any(|element| compare(CmpOp::Eq, of_value(element), item))
                }
                _ => false,
            },
            Condition::IsNull { term, negated } => {
                matches!(scalar(term, record), Scalar::Null) != *negated
            }
            Condition::Truth(term) => matches!(scalar(term, record), Scalar::Bool(true)),
        }
    }
}

fn same_kind(a: &Kind, b: &Kind) -> bool {
    matches!(
        (a, b),
        (Kind::Number, Kind::Number)
            | (Kind::Str { .. }, Kind::Str { .. })
            | (Kind::Bool, Kind::Bool)
    )
}

fn check_cmp(op: CmpOp, left: &Typed, right: &Typed) -> Result<(), String> {
    let ordering = !matches!(op, CmpOp::Eq | CmpOp::Ne);
    for side in [left, right] {
        match &side.kind {
            Kind::List(_) => return Err(format!("{} is an array; use 'contains'", side.what)),
            Kind::Null if ordering => {
                return Err(format!(
                    "null cannot be compared with '{}'; use 'is null'",
                    op.symbol()
                ));
            }
            Kind::Bool if ordering => {
                return Err(format!(
                    "booleans cannot be compared with '{}'",
                    op.symbol()
                ));
            }
            _ => {}
        }
    }
    match (&left.kind, &right.kind) {
        (Kind::Null, _)
        | (_, Kind::Null)
        | (Kind::Number, Kind::Number)
        | (Kind::Bool, Kind::Bool) => Ok(()),
        (Kind::Str { symbols: l }, Kind::Str { symbols: r }) => {
            let check = |symbols: &Option<Vec<String>>, other: &Typed| match (symbols, &other.term)
            {
                (Some(symbols), Term::Literal(Literal::Str(s))) if !symbols.contains(s) => Err(
                    format!("'{s}' is not one of the symbols {}", symbols.join(", ")),
                ),
                _ => Ok(()),
            };
            check(l, right)?;
            check(r, left)
        }
        _ => Err(format!("cannot compare {} with {}", left.what, right.what)),
    }
}

fn typed(operand: Operand, schema: &Schema) -> Result<Typed, Error> {
    let column = operand.column;
    match operand.kind {
        OperandKind::Group(_) => Err(Error::at(
            column,
            "a parenthesised condition is not a value",
        )),
        OperandKind::Literal(literal) => {
            let (kind, what) = match &literal {
                Literal::Int(_) | Literal::Float(_) => (Kind::Number, "a number"),
                Literal::Str(_) => (Kind::Str { symbols: None }, "a string"),
                Literal::Bool(_) => (Kind::Bool, "a boolean"),
                Literal::Null => (Kind::Null, "null"),
            };
            Ok(Typed {
                term: Term::Literal(literal),
                kind,
                what: what.to_owned(),
            })
        }
        OperandKind::Field(name) => {
            let path =
                FieldPath::resolve(schema, &name).map_err(|e| Error::at(column, e.message))?;
            let (value_schema, _nullable) = path.value_schema();
            let (kind, type_name) = kind_of(value_schema).ok_or_else(|| {
                Error::at(
                    column,
                    format!("field '{name}' has a type conditions cannot test"),
                )
            })?;
            let kind = match kind {
                Some(kind) => kind,
                None => {
                    return Err(Error::at(
                        column,
                        format!(
                            "field '{name}' is {type_name}; conditions test numbers, strings, enums, \
                             booleans and arrays of those"
                        ),
                    ));
                }
            };
            Ok(Typed {
                term: Term::Field(path),
                kind,
                what: format!("field '{name}' ({type_name})"),
            })
        }
    }
}

/// The kind of a field of `schema` (`None` if untestable) and a name for messages.
fn kind_of(schema: &Schema) -> Option<(Option<Kind>, String)> {
    let simple = |kind: Kind, name: &str| Some((Some(kind), name.to_owned()));
    match schema {
        Schema::Int => simple(Kind::Number, "int"),
        Schema::Long => simple(Kind::Number, "long"),
        Schema::Float => simple(Kind::Number, "float"),
        Schema::Double => simple(Kind::Number, "double"),
        Schema::Date => simple(Kind::Number, "date"),
        Schema::TimeMillis | Schema::TimeMicros => simple(Kind::Number, "time"),
        Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => simple(Kind::Number, "timestamp"),
        Schema::String => simple(Kind::Str { symbols: None }, "string"),
        Schema::Uuid => simple(Kind::Str { symbols: None }, "uuid"),
        Schema::Enum(e) => Some((
            Some(Kind::Str {
                symbols: Some(e.symbols.clone()),
            }),
            format!("enum {}", e.name),
        )),
        Schema::Boolean => simple(Kind::Bool, "boolean"),
        Schema::Null => simple(Kind::Null, "null"),
        Schema::Array(array) => match kind_of(&array.items) {
            Some((Some(item @ (Kind::Number | Kind::Str { .. } | Kind::Bool)), name)) => {
                Some((Some(Kind::List(Box::new(item))), format!("array of {name}")))
            }
            _ => Some((None, "an array of complex values".to_owned())),
        },
        Schema::Map(_) => Some((None, "a map".to_owned())),
        Schema::Record(r) => Some((None, format!("a record ({})", r.name))),
        Schema::Union(_) => Some((None, "a union of several types".to_owned())),
        Schema::Bytes | Schema::Fixed(_) => Some((None, "bytes".to_owned())),
        Schema::Decimal(_) | Schema::BigDecimal => Some((None, "a decimal".to_owned())),
        Schema::Duration => Some((None, "a duration".to_owned())),
        Schema::Ref { name } => Some((None, format!("a reference to {name}"))),
    }
}

#[derive(Debug, Clone, Copy)]
enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    Other,
}

fn scalar<'a>(term: &'a Term, record: &'a Record) -> Scalar<'a> {
    match term {
        Term::Literal(Literal::Int(n)) => Scalar::Int(*n),
        Term::Literal(Literal::Float(n)) => Scalar::Float(*n),
        Term::Literal(Literal::Str(s)) => Scalar::Str(s),
        Term::Literal(Literal::Bool(b)) => Scalar::Bool(*b),
        Term::Literal(Literal::Null) => Scalar::Null,
        Term::Field(path) => record.get(path).map_or(Scalar::Null, of_value),
    }
}

fn of_value(value: &Value) -> Scalar<'_> {
    match weft_guest::unwrap_union(value) {
        Value::Null => Scalar::Null,
        Value::Boolean(b) => Scalar::Bool(*b),
        Value::Int(n) | Value::Date(n) | Value::TimeMillis(n) => Scalar::Int(i64::from(*n)),
        Value::Long(n)
        | Value::TimeMicros(n)
        | Value::TimestampMillis(n)
        | Value::TimestampMicros(n)
        | Value::TimestampNanos(n)
        | Value::LocalTimestampMillis(n)
        | Value::LocalTimestampMicros(n)
        | Value::LocalTimestampNanos(n) => Scalar::Int(*n),
        Value::Float(n) => Scalar::Float(f64::from(*n)),
        Value::Double(n) => Scalar::Float(*n),
        Value::String(s) | Value::Enum(_, s) => Scalar::Str(s),
        _ => Scalar::Other,
    }
}

fn compare(op: CmpOp, left: Scalar<'_>, right: Scalar<'_>) -> bool {
    let ordering = match (left, right) {
        (Scalar::Null, Scalar::Null) => Some(Ordering::Equal),
        (Scalar::Null, _) | (_, Scalar::Null) => None,
        (Scalar::Int(l), Scalar::Int(r)) => Some(l.cmp(&r)),
        (Scalar::Int(l), Scalar::Float(r)) => (l as f64).partial_cmp(&r),
        (Scalar::Float(l), Scalar::Int(r)) => l.partial_cmp(&(r as f64)),
        (Scalar::Float(l), Scalar::Float(r)) => l.partial_cmp(&r),
        (Scalar::Str(l), Scalar::Str(r)) => Some(l.cmp(r)),
        (Scalar::Bool(l), Scalar::Bool(r)) => Some(l.cmp(&r)),
        _ => None,
    };
    match (op, ordering) {
        (CmpOp::Eq, ordering) => ordering == Some(Ordering::Equal),
        // Null differs from any value; so does NaN.
        (CmpOp::Ne, ordering) => ordering != Some(Ordering::Equal),
        (_, None) => false,
        (_, Some(Ordering::Equal)) if matches!((left, right), (Scalar::Null, _)) => false,
        (CmpOp::Lt, Some(o)) => o == Ordering::Less,
        (CmpOp::Le, Some(o)) => o != Ordering::Greater,
        (CmpOp::Gt, Some(o)) => o == Ordering::Greater,
        (CmpOp::Ge, Some(o)) => o != Ordering::Less,
    }
}
