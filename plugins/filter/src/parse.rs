//! The condition language's syntax: tokens and a recursive-descent parser with
//! errors that point at a column.
//!
//! ```text
//! condition := or
//! or        := and ("or" and)*
//! and       := unary ("and" unary)*
//! unary     := "not" unary | test
//! test      := operand [ cmp operand | "is" ["not"] "null" | strop operand ]
//! operand   := field | number | string | true | false | null | "(" condition ")"
//! cmp       := == | != | < | <= | > | >=
//! strop     := contains | starts_with | ends_with
//! field     := name ("." name)*
//! ```

use std::fmt;

/// A syntax or type error in the condition, at a 1-based column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub column: usize,
    pub message: String,
}

impl Error {
    pub fn at(column: usize, message: impl Into<String>) -> Self {
        Self {
            column,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrOp {
    Contains,
    StartsWith,
    EndsWith,
}

impl StrOp {
    pub fn name(self) -> &'static str {
        match self {
            StrOp::Contains => "contains",
            StrOp::StartsWith => "starts_with",
            StrOp::EndsWith => "ends_with",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Null,
}

/// A parsed condition; `column` fields locate operands for type errors.
#[derive(Debug, Clone, PartialEq)]
pub enum Ast {
    Or(Box<Ast>, Box<Ast>),
    And(Box<Ast>, Box<Ast>),
    Not(Box<Ast>),
    Cmp {
        op: CmpOp,
        left: Operand,
        right: Operand,
    },
    Str {
        op: StrOp,
        left: Operand,
        right: Operand,
    },
    IsNull {
        operand: Operand,
        negated: bool,
    },
    /// A lone operand: a boolean field or literal.
    Truth(Operand),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Operand {
    pub column: usize,
    pub kind: OperandKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OperandKind {
    Field(String),
    Literal(Literal),
    Group(Box<Ast>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    Int(i64),
    Float(f64),
    Str(String),
    Cmp(CmpOp),
    Minus,
    Open,
    Close,
    End,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Name(name) => write!(f, "'{name}'"),
            Token::Int(n) => write!(f, "'{n}'"),
            Token::Float(n) => write!(f, "'{n}'"),
            Token::Str(s) => write!(f, "string '{s}'"),
            Token::Cmp(op) => write!(f, "'{}'", op.symbol()),
            Token::Minus => f.write_str("'-'"),
            Token::Open => f.write_str("'('"),
            Token::Close => f.write_str("')'"),
            Token::End => f.write_str("the end of the condition"),
        }
    }
}

fn tokenize(source: &str) -> Result<Vec<(usize, Token)>, Error> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let column = i + 1;
        let c = chars[i];
        let two = |next: char| chars.get(i + 1) == Some(&next);
        let (token, len) = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => (Token::Open, 1),
            ')' => (Token::Close, 1),
            '-' => (Token::Minus, 1),
            '=' if two('=') => (Token::Cmp(CmpOp::Eq), 2),
            '=' => return Err(Error::at(column, "'=' is not an operator; use '=='")),
            '!' if two('=') => (Token::Cmp(CmpOp::Ne), 2),
            '<' if two('=') => (Token::Cmp(CmpOp::Le), 2),
            '<' => (Token::Cmp(CmpOp::Lt), 1),
            '>' if two('=') => (Token::Cmp(CmpOp::Ge), 2),
            '>' => (Token::Cmp(CmpOp::Gt), 1),
            '\'' | '"' => {
                let (text, len) = string(&chars[i..], column)?;
                (Token::Str(text), len)
            }
            c if c.is_ascii_digit() => number(&chars[i..], column)?,
            c if c.is_alphabetic() || c == '_' => {
                let len = chars[i..]
                    .iter()
                    .take_while(|c| c.is_alphanumeric() || **c == '_' || **c == '.')
                    .count();
                (Token::Name(chars[i..i + len].iter().collect()), len)
            }
            other => return Err(Error::at(column, format!("unexpected character '{other}'"))),
        };
        tokens.push((column, token));
        i += len;
    }
    tokens.push((chars.len() + 1, Token::End));
    Ok(tokens)
}

/// A quoted string with `\` escaping the quote, `\` itself, `n` and `t`.
fn string(chars: &[char], column: usize) -> Result<(String, usize), Error> {
    let quote = chars[0];
    let mut text = String::new();
    let mut i = 1;
    while i < chars.len() {
        match chars[i] {
            c if c == quote => return Ok((text, i + 1)),
            '\\' => {
                let escaped = match chars.get(i + 1) {
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some(&c) => c,
                    None => break,
                };
                text.push(escaped);
                i += 2;
            }
            c => {
                text.push(c);
                i += 1;
            }
        }
    }
    Err(Error::at(column, "unterminated string"))
}

fn number(chars: &[char], column: usize) -> Result<(Token, usize), Error> {
    let mut len = chars.iter().take_while(|c| c.is_ascii_digit()).count();
    let mut float = false;
    if chars.get(len) == Some(&'.') && chars.get(len + 1).is_some_and(char::is_ascii_digit) {
        float = true;
        len += 1 + chars[len + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
    }
    if matches!(chars.get(len), Some('e' | 'E')) {
        let sign = usize::from(matches!(chars.get(len + 1), Some('+' | '-')));
        let digits = chars[(len + 1 + sign).min(chars.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits > 0 {
            float = true;
            len += 1 + sign + digits;
        }
    }
    if chars
        .get(len)
        .is_some_and(|c| c.is_alphanumeric() || *c == '_')
    {
        return Err(Error::at(column, "invalid number"));
    }
    let text: String = chars[..len].iter().collect();
    let token = if float {
        Token::Float(
            text.parse()
                .map_err(|_| Error::at(column, "invalid number"))?,
        )
    } else {
        Token::Int(
            text.parse()
                .map_err(|_| Error::at(column, format!("integer {text} is too large")))?,
        )
    };
    Ok((token, len))
}

/// Parses a condition.
pub fn parse(source: &str) -> Result<Ast, Error> {
    let tokens = tokenize(source)?;
    if tokens.len() == 1 {
        return Err(Error::at(1, "the condition is empty"));
    }
    let mut parser = Parser { tokens, next: 0 };
    let ast = parser.or()?;
    let (column, token) = parser.peek();
    if *token != Token::End {
        return Err(Error::at(
            column,
            format!("unexpected {token} after a complete condition"),
        ));
    }
    Ok(ast)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    next: usize,
}

impl Parser {
    fn peek(&self) -> (usize, &Token) {
        let (column, token) = &self.tokens[self.next.min(self.tokens.len() - 1)];
        (*column, token)
    }

    fn bump(&mut self) -> (usize, Token) {
        let taken = self.tokens[self.next.min(self.tokens.len() - 1)].clone();
        self.next += 1;
        taken
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek().1, Token::Name(name) if name.eq_ignore_ascii_case(word))
    }

    fn or(&mut self) -> Result<Ast, Error> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.bump();
            let right = self.and()?;
            left = Ast::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Ast, Error> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.bump();
            let right = self.unary()?;
            left = Ast::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Ast, Error> {
        if self.keyword("not") {
            self.bump();
            return Ok(Ast::Not(Box::new(self.unary()?)));
        }
        self.test()
    }

    fn test(&mut self) -> Result<Ast, Error> {
        let left = self.operand("a field, a value or '('")?;
        let (column, token) = self.peek();
        if let Token::Cmp(op) = *token {
            self.bump();
            let right = self.operand(&format!("a value after '{}'", op.symbol()))?;
            return Ok(Ast::Cmp { op, left, right });
        }
        let str_op = match token {
            Token::Name(name) if name == "contains" => Some(StrOp::Contains),
            Token::Name(name) if name == "starts_with" => Some(StrOp::StartsWith),
            Token::Name(name) if name == "ends_with" => Some(StrOp::EndsWith),
            _ => None,
        };
        if let Some(op) = str_op {
            self.bump();
            let right = self.operand(&format!("a value after '{}'", op.name()))?;
            return Ok(Ast::Str { op, left, right });
        }
        if self.keyword("is") {
            self.bump();
            let negated = self.keyword("not");
            if negated {
                self.bump();
            }
            if !self.keyword("null") {
                let (column, token) = self.peek();
                let after = if negated { "is not" } else { "is" };
                return Err(Error::at(
                    column,
                    format!("expected 'null' after '{after}', found {token}"),
                ));
            }
            self.bump();
            return Ok(Ast::IsNull {
                operand: left,
                negated,
            });
        }
        let _ = column;
        Ok(Ast::Truth(left))
    }

    fn operand(&mut self, expected: &str) -> Result<Operand, Error> {
        let (column, token) = self.bump();
        let kind = match token {
            Token::Int(n) => OperandKind::Literal(Literal::Int(n)),
            Token::Float(n) => OperandKind::Literal(Literal::Float(n)),
            Token::Str(s) => OperandKind::Literal(Literal::Str(s)),
            Token::Minus => match self.bump() {
                (_, Token::Int(n)) => OperandKind::Literal(Literal::Int(-n)),
                (_, Token::Float(n)) => OperandKind::Literal(Literal::Float(-n)),
                (column, _) => return Err(Error::at(column, "expected a number after '-'")),
            },
            Token::Open => {
                let inner = self.or()?;
                let (close_column, close) = self.bump();
                if close != Token::Close {
                    return Err(Error::at(
                        close_column,
                        format!("expected ')' to close the '(' at column {column}, found {close}"),
                    ));
                }
                OperandKind::Group(Box::new(inner))
            }
            Token::Name(name) => match name.to_ascii_lowercase().as_str() {
                "true" => OperandKind::Literal(Literal::Bool(true)),
                "false" => OperandKind::Literal(Literal::Bool(false)),
                "null" => OperandKind::Literal(Literal::Null),
                "and" | "or" | "not" | "is" | "contains" | "starts_with" | "ends_with" => {
                    return Err(Error::at(
                        column,
                        format!("expected {expected}, found '{name}'"),
                    ));
                }
                _ if name.split('.').any(str::is_empty) => {
                    return Err(Error::at(column, format!("invalid field path '{name}'")));
                }
                _ => OperandKind::Field(name),
            },
            other => {
                return Err(Error::at(
                    column,
                    format!("expected {expected}, found {other}"),
                ));
            }
        };
        Ok(Operand { column, kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(column: usize, name: &str) -> Operand {
        Operand {
            column,
            kind: OperandKind::Field(name.into()),
        }
    }

    fn lit(column: usize, literal: Literal) -> Operand {
        Operand {
            column,
            kind: OperandKind::Literal(literal),
        }
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let ast = parse("a == 1 or not b and c.d >= -2.5").expect("parses");
        let expected = Ast::Or(
            Box::new(Ast::Cmp {
                op: CmpOp::Eq,
                left: field(1, "a"),
                right: lit(6, Literal::Int(1)),
            }),
            Box::new(Ast::And(
                Box::new(Ast::Not(Box::new(Ast::Truth(field(15, "b"))))),
                Box::new(Ast::Cmp {
                    op: CmpOp::Ge,
                    left: field(21, "c.d"),
                    right: lit(28, Literal::Float(-2.5)),
                }),
            )),
        );
        assert_eq!(ast, expected);
    }

    #[test]
    fn strings_nulls_and_groups() {
        let ast =
            parse(r#"(name starts_with 'O\'Br' OR x is not null) AND y IS NULL"#).expect("parses");
        let Ast::And(left, right) = ast else {
            panic!("expected and")
        };
        assert_eq!(
            *right,
            Ast::IsNull {
                operand: field(49, "y"),
                negated: false
            }
        );
        let Ast::Truth(Operand {
            kind: OperandKind::Group(group),
            ..
        }) = *left
        else {
            panic!("expected group")
        };
        let Ast::Or(starts, is_not_null) = *group else {
            panic!("expected or")
        };
        assert_eq!(
            *starts,
            Ast::Str {
                op: StrOp::StartsWith,
                left: field(2, "name"),
                right: lit(19, Literal::Str("O'Br".into()))
            }
        );
        assert_eq!(
            *is_not_null,
            Ast::IsNull {
                operand: field(30, "x"),
                negated: true
            }
        );
    }

    #[test]
    fn numbers() {
        for (source, literal) in [
            ("a == 42", Literal::Int(42)),
            ("a == -7", Literal::Int(-7)),
            ("a == 1e3", Literal::Float(1000.0)),
            ("a == 0.25", Literal::Float(0.25)),
        ] {
            let Ast::Cmp { right, .. } = parse(source).expect(source) else {
                panic!("{source}")
            };
            assert_eq!(right.kind, OperandKind::Literal(literal), "{source}");
        }
    }

    #[test]
    fn errors_point_at_the_column() {
        let cases = [
            (
                "year > 2000 and rating >= ",
                "column 27: expected a value after '>=', found the end of the condition",
            ),
            (
                "year >= and x",
                "column 9: expected a value after '>=', found 'and'",
            ),
            ("", "column 1: the condition is empty"),
            ("year = 3", "column 6: '=' is not an operator; use '=='"),
            (
                "(a == 1",
                "column 8: expected ')' to close the '(' at column 1, found the end of the condition",
            ),
            (
                "a == 1 b",
                "column 8: unexpected 'b' after a complete condition",
            ),
            ("title == 'abc", "column 10: unterminated string"),
            ("a is 3", "column 6: expected 'null' after 'is', found '3'"),
            ("a == 12ab", "column 6: invalid number"),
            ("a == #", "column 6: unexpected character '#'"),
            (
                "owner..name == 1",
                "column 1: invalid field path 'owner..name'",
            ),
            ("a == - x", "column 8: expected a number after '-'"),
            (
                "a == 99999999999999999999",
                "column 6: integer 99999999999999999999 is too large",
            ),
        ];
        for (source, expected) in cases {
            assert_eq!(
                parse(source).expect_err(source).to_string(),
                expected,
                "{source}"
            );
        }
    }
}
