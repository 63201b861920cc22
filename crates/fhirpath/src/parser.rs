//! A precedence-climbing parser for the FHIRPath N1 grammar. Every node's depth is
//! bounded ([`MAX_DEPTH`]), so neither parsing, evaluating nor dropping an
//! expression can overflow the stack.

use crate::ParseError;
use crate::ast::{BinOp, Expr, Literal, TypeSpec};
use crate::lexer::{Tok, Token, tokenize};
use crate::value::{DateTime, Dec};

/// The deepest expression tree accepted (nesting of parentheses, operators and
/// invocation chains together).
pub(crate) const MAX_DEPTH: u32 = 200;

/// Functions fhirconf evaluates: name, minimum and maximum argument count.
const FUNCTIONS: &[(&str, usize, usize)] = &[
    ("empty", 0, 0),
    ("exists", 0, 1),
    ("all", 1, 1),
    ("allTrue", 0, 0),
    ("anyTrue", 0, 0),
    ("allFalse", 0, 0),
    ("anyFalse", 0, 0),
    ("subsetOf", 1, 1),
    ("supersetOf", 1, 1),
    ("count", 0, 0),
    ("distinct", 0, 0),
    ("isDistinct", 0, 0),
    ("where", 1, 1),
    ("select", 1, 1),
    ("repeat", 1, 1),
    ("ofType", 1, 1),
    ("single", 0, 0),
    ("first", 0, 0),
    ("last", 0, 0),
    ("tail", 0, 0),
    ("skip", 1, 1),
    ("take", 1, 1),
    ("intersect", 1, 1),
    ("exclude", 1, 1),
    ("union", 1, 1),
    ("combine", 1, 1),
    ("iif", 2, 3),
    ("toBoolean", 0, 0),
    ("convertsToBoolean", 0, 0),
    ("toInteger", 0, 0),
    ("convertsToInteger", 0, 0),
    ("toDecimal", 0, 0),
    ("convertsToDecimal", 0, 0),
    ("toString", 0, 0),
    ("convertsToString", 0, 0),
    ("toDate", 0, 0),
    ("convertsToDate", 0, 0),
    ("toDateTime", 0, 0),
    ("convertsToDateTime", 0, 0),
    ("toTime", 0, 0),
    ("convertsToTime", 0, 0),
    ("toQuantity", 0, 1),
    ("convertsToQuantity", 0, 1),
    ("indexOf", 1, 1),
    ("substring", 1, 2),
    ("startsWith", 1, 1),
    ("endsWith", 1, 1),
    ("contains", 1, 1),
    ("upper", 0, 0),
    ("lower", 0, 0),
    ("replace", 2, 2),
    ("matches", 1, 1),
    ("matchesFull", 1, 1),
    ("replaceMatches", 2, 2),
    ("length", 0, 0),
    ("toChars", 0, 0),
    ("trim", 0, 0),
    ("split", 1, 1),
    ("join", 0, 1),
    ("abs", 0, 0),
    ("ceiling", 0, 0),
    ("exp", 0, 0),
    ("floor", 0, 0),
    ("ln", 0, 0),
    ("log", 1, 1),
    ("power", 1, 1),
    ("round", 0, 1),
    ("sqrt", 0, 0),
    ("truncate", 0, 0),
    ("children", 0, 0),
    ("descendants", 0, 0),
    ("trace", 1, 2),
    ("today", 0, 0),
    ("now", 0, 0),
    ("timeOfDay", 0, 0),
    ("is", 1, 1),
    ("as", 1, 1),
    ("not", 0, 0),
    ("aggregate", 1, 2),
    ("extension", 1, 1),
    ("hasValue", 0, 0),
    ("getValue", 0, 0),
    ("resolve", 0, 0),
    ("htmlChecks", 0, 0),
    ("sort", 0, 8),
    ("lowBoundary", 0, 1),
    ("highBoundary", 0, 1),
    ("type", 0, 0),
    ("comparable", 1, 1),
    ("precision", 0, 0),
    ("encode", 1, 1),
    ("decode", 1, 1),
    ("escape", 1, 1),
    ("unescape", 1, 1),
];

/// Functions FHIRPath or FHIR define that fhirconf does not evaluate, and why.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("memberOf", "it needs a terminology server"),
    ("subsumes", "it needs a terminology server"),
    ("subsumedBy", "it needs a terminology server"),
    ("conformsTo", "it needs the profiles' StructureDefinitions"),
    ("elementDefinition", "it needs the StructureDefinitions"),
    ("slice", "it needs the profiles' StructureDefinitions"),
    ("checkModifiers", "it needs the StructureDefinitions"),
    ("defineVariable", "it is not part of FHIRPath N1 (R4)"),
    ("yearOf", "it is not part of FHIRPath N1 (R4)"),
    ("monthOf", "it is not part of FHIRPath N1 (R4)"),
    ("dayOf", "it is not part of FHIRPath N1 (R4)"),
    ("hourOf", "it is not part of FHIRPath N1 (R4)"),
    ("minuteOf", "it is not part of FHIRPath N1 (R4)"),
    ("secondOf", "it is not part of FHIRPath N1 (R4)"),
    ("millisecondOf", "it is not part of FHIRPath N1 (R4)"),
    ("timezoneOffsetOf", "it is not part of FHIRPath N1 (R4)"),
    ("dateOf", "it is not part of FHIRPath N1 (R4)"),
    ("timeOf", "it is not part of FHIRPath N1 (R4)"),
    ("lastIndexOf", "it is not part of FHIRPath N1 (R4)"),
    ("coalesce", "it is not part of FHIRPath N1 (R4)"),
    ("repeatAll", "it is not part of FHIRPath N1 (R4)"),
    ("sum", "it is not part of FHIRPath N1 (R4)"),
    ("min", "it is not part of FHIRPath N1 (R4)"),
    ("max", "it is not part of FHIRPath N1 (R4)"),
    ("avg", "it is not part of FHIRPath N1 (R4)"),
    ("duration", "it is not part of FHIRPath N1 (R4)"),
    ("difference", "it is not part of FHIRPath N1 (R4)"),
    ("toLong", "it is not part of FHIRPath N1 (R4)"),
    ("convertsToLong", "it is not part of FHIRPath N1 (R4)"),
    ("pathname", "it is not part of FHIRPath N1 (R4)"),
    ("hasTemplateIdOf", "it is for CDA documents, not FHIR R4"),
    ("getReferenceKey", "it is not part of FHIR R4"),
    ("getResourceKey", "it is not part of FHIR R4"),
];

struct Parser {
    toks: Vec<Token>,
    pos: usize,
}

type Parsed = (Expr, u32);

fn err(offset: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        offset,
        message: message.into(),
    }
}

/// Parses a whole expression.
pub(crate) fn parse(src: &str) -> Result<Expr, ParseError> {
    let toks = tokenize(src)?;
    let mut p = Parser { toks, pos: 0 };
    let (e, _) = p.expr(0, 0)?;
    let t = p.peek();
    if t.tok != Tok::Eof {
        return Err(err(
            t.offset,
            format!(
                "expected an operator or the end of the expression, found {}",
                describe(&t.tok)
            ),
        ));
    }
    Ok(e)
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident { name, .. } => format!("'{name}'"),
        Tok::Str(s) => format!("the string '{s}'"),
        Tok::Num(n) => format!("the number {n}"),
        Tok::DateTime(d) => format!("@{d}"),
        Tok::Var(v) => format!("%{v}"),
        Tok::Special(s) => s.clone(),
        Tok::Punct(p) => format!("'{p}'"),
        Tok::Eof => "the end of the expression".into(),
    }
}

/// Binding power of a binary operator token (higher binds tighter).
fn binary_op(t: &Tok) -> Option<(BinOp, u8)> {
    let (op, bp) = match t {
        Tok::Punct(p) => match *p {
            "*" => (BinOp::Mul, 10),
            "/" => (BinOp::Div, 10),
            "+" => (BinOp::Add, 9),
            "-" => (BinOp::Sub, 9),
            "&" => (BinOp::Concat, 9),
            "|" => (BinOp::Union, 7),
            "<" => (BinOp::Lt, 6),
            ">" => (BinOp::Gt, 6),
            "<=" => (BinOp::Le, 6),
            ">=" => (BinOp::Ge, 6),
            "=" => (BinOp::Eq, 5),
            "~" => (BinOp::Equiv, 5),
            "!=" => (BinOp::Ne, 5),
            "!~" => (BinOp::NotEquiv, 5),
            _ => return None,
        },
        Tok::Ident {
            name,
            delimited: false,
        } => match name.as_str() {
            "div" => (BinOp::IntDiv, 10),
            "mod" => (BinOp::Mod, 10),
            "in" => (BinOp::In, 4),
            "contains" => (BinOp::Contains, 4),
            "and" => (BinOp::And, 3),
            "or" => (BinOp::Or, 2),
            "xor" => (BinOp::Xor, 2),
            "implies" => (BinOp::Implies, 1),
            _ => return None,
        },
        _ => return None,
    };
    Some((op, bp))
}

/// `is` and `as` bind between additive (9) and union (7).
const TYPE_OP_BP: u8 = 8;

fn check_depth(depth: u32, offset: usize) -> Result<(), ParseError> {
    if depth > MAX_DEPTH {
        Err(err(
            offset,
            format!("the expression is nested too deeply (more than {MAX_DEPTH} levels)"),
        ))
    } else {
        Ok(())
    }
}

impl Parser {
    fn peek(&self) -> &Token {
        // tokenize always ends with Eof, and pos never passes it.
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek().tok, Tok::Punct(q) if q == p)
    }

    fn expect(&mut self, p: &str, what: &str) -> Result<(), ParseError> {
        if self.is_punct(p) {
            self.next();
            Ok(())
        } else {
            let t = self.peek();
            Err(err(
                t.offset,
                format!("expected '{p}' {what}, found {}", describe(&t.tok)),
            ))
        }
    }

    /// An expression whose binary operators bind tighter than `min_bp`.
    fn expr(&mut self, min_bp: u8, depth: u32) -> Result<Parsed, ParseError> {
        check_depth(depth, self.peek().offset)?;
        let (mut lhs, mut d) = self.unary(depth + 1)?;
        loop {
            let t = self.peek().clone();
            if let Tok::Ident {
                name,
                delimited: false,
            } = &t.tok
                && (name == "is" || name == "as")
            {
                if TYPE_OP_BP <= min_bp {
                    break;
                }
                self.next();
                let spec_at = self.peek().offset;
                let spec = self.type_spec()?;
                check_type(&spec, spec_at)?;
                d += 1;
                check_depth(d, t.offset)?;
                lhs = if name == "is" {
                    Expr::Is(Box::new(lhs), spec)
                } else {
                    Expr::As(Box::new(lhs), spec)
                };
                continue;
            }
            let Some((op, bp)) = binary_op(&t.tok) else {
                break;
            };
            if bp <= min_bp {
                break;
            }
            self.next();
            if self.peek().tok == Tok::Eof {
                return Err(err(
                    self.peek().offset,
                    format!("expected an expression after {}", describe(&t.tok)),
                ));
            }
            let (rhs, rd) = self.expr(bp, depth + 1)?;
            d = d.max(rd) + 1;
            check_depth(d, t.offset)?;
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
        Ok((lhs, d))
    }

    fn type_spec(&mut self) -> Result<TypeSpec, ParseError> {
        let t = self.next();
        let Tok::Ident { name, .. } = t.tok else {
            return Err(err(
                t.offset,
                format!("expected a type name, found {}", describe(&t.tok)),
            ));
        };
        if self.is_punct(".")
            && let Some(Token {
                tok: Tok::Ident { name: second, .. },
                ..
            }) = self.toks.get(self.pos + 1).cloned()
        {
            self.next();
            self.next();
            return Ok(TypeSpec {
                namespace: Some(name),
                name: second,
            });
        }
        Ok(TypeSpec {
            namespace: None,
            name,
        })
    }

    fn unary(&mut self, depth: u32) -> Result<Parsed, ParseError> {
        check_depth(depth, self.peek().offset)?;
        if self.is_punct("+") || self.is_punct("-") {
            let neg = self.is_punct("-");
            self.next();
            let (e, d) = self.unary(depth + 1)?;
            return Ok(if neg {
                (Expr::Negate(Box::new(e)), d + 1)
            } else {
                (e, d)
            });
        }
        self.postfix(depth + 1)
    }

    fn postfix(&mut self, depth: u32) -> Result<Parsed, ParseError> {
        let (mut e, mut d) = self.term(depth)?;
        loop {
            let at = self.peek().offset;
            if self.is_punct(".") {
                self.next();
                let t = self.next();
                match t.tok {
                    Tok::Ident { name, .. } => {
                        if self.is_punct("(") {
                            let (call, cd) = self.call(&name, t.offset, Some(e), d, depth)?;
                            e = call;
                            d = cd;
                        } else {
                            e = Expr::Member(Box::new(e), name);
                            d += 1;
                        }
                    }
                    Tok::Special(_) => {
                        // `x.$this` is x's items; `$index`/`$total` after '.' are odd
                        // but harmless: keep the left side's focus.
                        d += 1;
                    }
                    other => {
                        return Err(err(
                            t.offset,
                            format!(
                                "expected a name or function call after '.', found {}",
                                describe(&other)
                            ),
                        ));
                    }
                }
            } else if self.is_punct("[") {
                self.next();
                let (idx, id) = self.expr(0, depth + 1)?;
                self.expect("]", "to close the indexer")?;
                e = Expr::Indexer(Box::new(e), Box::new(idx));
                d = d.max(id) + 1;
            } else {
                break;
            }
            check_depth(d, at)?;
        }
        Ok((e, d))
    }

    fn call(
        &mut self,
        name: &str,
        offset: usize,
        target: Option<Expr>,
        target_depth: u32,
        depth: u32,
    ) -> Result<Parsed, ParseError> {
        self.expect("(", "to start the arguments")?;
        let mut args = Vec::new();
        let mut d = target_depth;
        if !self.is_punct(")") {
            loop {
                let (a, ad) = self.expr(0, depth + 1)?;
                d = d.max(ad);
                args.push(a);
                if self.is_punct(",") {
                    self.next();
                    continue;
                }
                if self.is_punct(")") {
                    break;
                }
                let t = self.peek();
                return Err(err(
                    t.offset,
                    format!(
                        "expected ')' to close the call of {name}(), found {}",
                        describe(&t.tok)
                    ),
                ));
            }
        }
        self.next();
        let Some(&(fname, min, max)) = FUNCTIONS.iter().find(|f| f.0 == name) else {
            if let Some((_, why)) = UNSUPPORTED.iter().find(|f| f.0 == name) {
                return Err(err(
                    offset,
                    format!("`{name}()` is not supported by fhirconf: {why}"),
                ));
            }
            return Err(err(offset, format!("unknown function `{name}()`")));
        };
        if args.len() < min || args.len() > max {
            let want = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(err(
                offset,
                format!(
                    "{name}() takes {want} argument{}, not {}",
                    if max == 1 && min == 1 { "" } else { "s" },
                    args.len()
                ),
            ));
        }
        let type_arg = if matches!(fname, "is" | "as" | "ofType") {
            let spec = type_of_arg(&args[0]).ok_or_else(|| {
                err(
                    offset,
                    format!("expected a type name as the argument of {name}()"),
                )
            })?;
            check_type(&spec, offset)?;
            Some(spec)
        } else {
            None
        };
        Ok((
            Expr::Call {
                target: target.map(Box::new),
                name: fname,
                args,
                type_arg,
            },
            d + 1,
        ))
    }

    fn term(&mut self, depth: u32) -> Result<Parsed, ParseError> {
        check_depth(depth, self.peek().offset)?;
        let t = self.next();
        let lit = |l| Ok((Expr::Literal(l), 1));
        match t.tok {
            Tok::Num(n) => {
                let unit = self.quantity_unit();
                if let Some(unit) = unit {
                    let v = Dec::parse(&n).ok_or_else(|| err(t.offset, "invalid number"))?;
                    return lit(Literal::Quantity(v, unit.into()));
                }
                if n.contains('.') {
                    let v = Dec::parse(&n).ok_or_else(|| err(t.offset, "invalid number"))?;
                    lit(Literal::Dec(v))
                } else {
                    match n.parse::<i64>() {
                        Ok(v) => lit(Literal::Int(v)),
                        Err(_) => Err(err(t.offset, "integer literal out of range")),
                    }
                }
            }
            Tok::Str(s) => lit(Literal::Str(s.into())),
            Tok::DateTime(s) => {
                if let Some(time) = s.strip_prefix('T') {
                    let v = DateTime::parse_time(time)
                        .ok_or_else(|| err(t.offset, format!("invalid time @{s}")))?;
                    lit(Literal::Time(v))
                } else if s.contains('T') {
                    let v = DateTime::parse_date_time(&s)
                        .ok_or_else(|| err(t.offset, format!("invalid date-time @{s}")))?;
                    lit(Literal::DateTime(v))
                } else {
                    let v = DateTime::parse_date(&s)
                        .ok_or_else(|| err(t.offset, format!("invalid date @{s}")))?;
                    lit(Literal::Date(v))
                }
            }
            Tok::Var(v) => Ok((Expr::Var(v), 1)),
            Tok::Special(s) => Ok((
                match s.as_str() {
                    "$this" => Expr::This,
                    "$index" => Expr::Index,
                    _ => Expr::Total,
                },
                1,
            )),
            Tok::Punct("(") => {
                let (e, d) = self.expr(0, depth + 1)?;
                self.expect(")", "to close the parenthesis")?;
                Ok((e, d + 1))
            }
            Tok::Punct("{") => {
                self.expect("}", "to close the empty collection '{}'")?;
                lit(Literal::Empty)
            }
            Tok::Ident { name, delimited } => {
                if !delimited {
                    match name.as_str() {
                        "true" => return lit(Literal::Bool(true)),
                        "false" => return lit(Literal::Bool(false)),
                        "and" | "or" | "xor" | "implies" | "div" | "mod" => {
                            return Err(err(
                                t.offset,
                                format!("expected an expression, found the operator '{name}'"),
                            ));
                        }
                        _ => {}
                    }
                }
                if self.is_punct("(") && !delimited {
                    return self.call(&name, t.offset, None, 0, depth);
                }
                Ok((Expr::Ident(name), 1))
            }
            other => Err(err(
                t.offset,
                format!("expected an expression, found {}", describe(&other)),
            )),
        }
    }

    /// After a number: a unit string or a calendar duration keyword.
    fn quantity_unit(&mut self) -> Option<String> {
        match &self.peek().tok {
            Tok::Str(u) => {
                let u = u.clone();
                self.next();
                Some(u)
            }
            Tok::Ident {
                name,
                delimited: false,
            } if crate::value::is_calendar_unit(name) => {
                let u = name.clone();
                self.next();
                Some(u)
            }
            _ => None,
        }
    }
}

/// The type named by the argument of `is()`, `as()`, `ofType()`.
fn type_of_arg(e: &Expr) -> Option<TypeSpec> {
    match e {
        Expr::Ident(n) => Some(TypeSpec {
            namespace: None,
            name: n.clone(),
        }),
        Expr::Member(inner, n) => match &**inner {
            Expr::Ident(ns) => Some(TypeSpec {
                namespace: Some(ns.clone()),
                name: n.clone(),
            }),
            _ => None,
        },
        _ => None,
    }
}

/// The System types of FHIRPath.
const SYSTEM_TYPES: &[&str] = &[
    "Any", "Boolean", "String", "Integer", "Decimal", "Date", "DateTime", "Time", "Quantity",
];

/// A type name must name a System type or a type of the R4 model.
fn check_type(spec: &TypeSpec, offset: usize) -> Result<(), ParseError> {
    let system = SYSTEM_TYPES.contains(&spec.name.as_str());
    let fhir = r4_model::r4().type_def(&spec.name).is_some() || spec.name == "Base";
    let ok = match spec.namespace.as_deref() {
        // `System.Patient` names a type that exists, in the wrong namespace: no
        // value is of it (the suite's testType22), but it is not a typo.
        Some("System") => system || fhir,
        Some("FHIR") => fhir,
        None => system || fhir,
        Some(_) => false,
    };
    if ok {
        Ok(())
    } else {
        let full = match &spec.namespace {
            Some(ns) => format!("{ns}.{}", spec.name),
            None => spec.name.clone(),
        };
        Err(err(offset, format!("unknown type `{full}`")))
    }
}
