//! A checked contract: names resolved to indices, the protocol's sugar
//! expanded into plain states, and every rule of the language verified.
//! This is what [`crate::parse`] returns and [`crate::generate`] reads.

pub use crate::ast::{Distillation, Turn};

/// A contract that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contract {
    /// The name after `contract`.
    pub name: String,
    /// The source file's name (without directories), for the header of the
    /// generated code.
    pub source: String,
    /// `///` lines before `contract`.
    pub docs: Vec<String>,
    /// Client-to-service messages, in declaration order (tag = index + 1).
    pub requests: Vec<Message>,
    /// Service-to-client messages, in declaration order (tag = index + 1).
    pub replies: Vec<Message>,
    /// Declared states, each followed by the anonymous states its sugar
    /// transitions created.
    pub states: Vec<State>,
    /// Index of the start state.
    pub start: usize,
    /// Index (in `replies`) of the error reply.
    pub error_reply: Option<usize>,
    /// The resilience section.
    pub resilience: Option<Resilience>,
}

/// A message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Its name.
    pub name: String,
    /// `///` lines before it.
    pub docs: Vec<String>,
    /// Its fields, in order.
    pub fields: Vec<Field>,
}

impl Message {
    /// The most bytes this message takes on the wire: its tag and fields.
    pub fn max_wire_bytes(&self) -> u64 {
        1 + self.fields.iter().map(|f| f.ty.max_wire_bytes()).sum::<u64>()
    }

    /// Whether a field is an endpoint (or a list of endpoints).
    pub fn has_endpoint(&self) -> bool {
        self.fields.iter().any(|f| f.ty.contains(&|t| *t == Type::Endpoint))
    }

    /// Whether a field carries a kernel handle (endpoint or handle).
    pub fn has_handles(&self) -> bool {
        self.fields.iter().any(|f| f.ty.carries_handles())
    }
}

/// A field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// Its name.
    pub name: String,
    /// `///` lines before it.
    pub docs: Vec<String>,
    /// Its type.
    pub ty: Type,
}

/// A field type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    /// `u8`
    U8,
    /// `u16`
    U16,
    /// `u32`
    U32,
    /// `u64`
    U64,
    /// `i32`
    I32,
    /// `i64`
    I64,
    /// `bool`
    Bool,
    /// `string[max]` (UTF-8, at most `max` bytes)
    String(u32),
    /// `bytes[max]`
    Bytes(u32),
    /// `endpoint`: a channel end travelling with the message
    Endpoint,
    /// `handle`: any kernel handle
    Handle,
    /// `list<element>[max]`: at most `max` elements (the checker never
    /// makes a list of lists)
    List(Box<Type>, u32),
}

impl Type {
    /// Whether values of this type move kernel handles (endpoints and
    /// handles, and lists of them).
    pub fn carries_handles(&self) -> bool {
        self.contains(&|t| matches!(t, Type::Endpoint | Type::Handle))
    }

    /// Whether `pred` holds for this type or, for a list, its element type.
    pub fn contains(&self, pred: &dyn Fn(&Type) -> bool) -> bool {
        match self {
            Type::List(element, _) => pred(self) || element.contains(pred),
            _ => pred(self),
        }
    }

    /// The type's name in the contract language.
    pub fn contract_name(&self) -> String {
        match self {
            Type::U8 => "u8".into(),
            Type::U16 => "u16".into(),
            Type::U32 => "u32".into(),
            Type::U64 => "u64".into(),
            Type::I32 => "i32".into(),
            Type::I64 => "i64".into(),
            Type::Bool => "bool".into(),
            Type::String(n) => format!("string[{n}]"),
            Type::Bytes(n) => format!("bytes[{n}]"),
            Type::Endpoint => "endpoint".into(),
            Type::Handle => "handle".into(),
            Type::List(element, n) => format!("list<{}>[{n}]", element.contract_name()),
        }
    }

    /// The most bytes a value of this type takes on the wire (handles and
    /// endpoints travel beside the bytes; an endpoint leaves a one-byte
    /// side marker).
    pub fn max_wire_bytes(&self) -> u64 {
        match self {
            Type::U8 | Type::Bool | Type::Endpoint => 1,
            Type::U16 => 2,
            Type::U32 | Type::I32 => 4,
            Type::U64 | Type::I64 => 8,
            Type::String(n) | Type::Bytes(n) => 4 + u64::from(*n),
            Type::Handle => 0,
            Type::List(element, n) => 4 + u64::from(*n) * element.max_wire_bytes(),
        }
    }

    /// The range of an integer type.
    pub fn int_range(&self) -> Option<(i128, i128)> {
        Some(match self {
            Type::U8 => (0, u8::MAX.into()),
            Type::U16 => (0, u16::MAX.into()),
            Type::U32 => (0, u32::MAX.into()),
            Type::U64 => (0, u64::MAX.into()),
            Type::I32 => (i32::MIN.into(), i32::MAX.into()),
            Type::I64 => (i64::MIN.into(), i64::MAX.into()),
            _ => return None,
        })
    }
}

/// A protocol state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// Its name (for anonymous states, `<From>_<Request>`).
    pub name: String,
    /// `///` lines before it.
    pub docs: Vec<String>,
    /// Whose turn it is.
    pub turn: Turn,
    /// Where its messages lead: message index (in `requests` for a
    /// client-turn state, in `replies` otherwise) and the next state.
    pub transitions: Vec<Transition>,
    /// For an anonymous state: the state whose sugar transition created it
    /// and that transition's first message (a request if that state is
    /// client-turn, else a reply).
    pub origin: Option<(usize, usize)>,
}

/// A message allowed in a state and the state it leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The message's index among the requests or the replies.
    pub message: usize,
    /// The next state's index.
    pub target: usize,
}

/// The resilience section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resilience {
    /// Requests after whose answer a checkpoint is taken.
    pub checkpoint_after: Vec<usize>,
    /// `checkpoint every N requests`.
    pub every_requests: Option<u32>,
    /// `checkpoint every N ms`.
    pub every_ms: Option<u32>,
    /// Requests that do not change the service's state.
    pub idempotent: Vec<usize>,
    /// Requests whose reply is released only once the request is on the
    /// checkpoint disk (in the log after the newest checkpoint).
    pub durable: Vec<usize>,
    /// How state is captured.
    pub distillation: Distillation,
    /// How long the service may take to answer a request, restore or save
    /// (milliseconds; None: the companion's default).
    pub deadline_ms: Option<u32>,
    /// Requests with a deadline of their own: (request index, ms).
    pub deadlines: Vec<(usize, u32)>,
    /// What a client is told when its request cannot be recovered.
    pub unrecoverable: Unrecoverable,
}

/// A reply with a value for each field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unrecoverable {
    /// Index in `replies`.
    pub reply: usize,
    /// One value per field, in field order.
    pub values: Vec<Value>,
}

/// A checked literal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// For integer fields (within the field type's range).
    Int(i128),
    /// For `bool` fields.
    Bool(bool),
    /// For `string` and `bytes` fields (within the maximum length).
    Str(String),
    /// For `list` fields (at most the maximum count, each element valid
    /// for the element type).
    List(Vec<Value>),
}
