//! `user_data` of every SQE: `kind: u8 | index: u56`. No magic numbers: the
//! completion loop dispatches on [`Kind`] and looks `index` up in the table
//! that owns that kind of operation.

/// What an in-flight operation is; the high byte of its `user_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// Multishot RECVMSG on UDP socket `index`.
    UdpRecv = 1,
    /// SENDMSG from send slot `index`.
    UdpSend = 2,
    /// Multishot ACCEPT on listener `index`.
    Accept = 3,
    /// Multishot RECV on connection slot `index`.
    TcpRecv = 4,
    /// SEND from connection slot `index`'s out buffer.
    TcpSend = 5,
    /// TIMEOUT of timer `index`.
    Timer = 6,
    /// READ of the signalfd (worker 0 only).
    Signal = 7,
    /// A wake-up posted into this ring by another worker's MSG_RING, or the
    /// READ of this worker's wake eventfd.
    Wake = 8,
    /// The sender-side completion of a MSG_RING we issued.
    MsgRingSent = 9,
    /// An ASYNC_CANCEL we issued (its result is only counted).
    Cancel = 10,
    /// A tick TIMEOUT used while draining sends at stop.
    Tick = 11,
    /// The TIMEOUT that wakes the worker once a deadline tick while any
    /// connection deadline is set.
    Deadline = 12,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::UdpRecv,
            2 => Kind::UdpSend,
            3 => Kind::Accept,
            4 => Kind::TcpRecv,
            5 => Kind::TcpSend,
            6 => Kind::Timer,
            7 => Kind::Signal,
            8 => Kind::Wake,
            9 => Kind::MsgRingSent,
            10 => Kind::Cancel,
            11 => Kind::Tick,
            12 => Kind::Deadline,
            _ => return None,
        })
    }
}

/// Packed `kind: u8 | index: u56`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UserData(pub(crate) u64);

const INDEX_BITS: u32 = 56;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;

impl UserData {
    /// Pack; `index` is truncated to 56 bits (indices are slot numbers, far smaller).
    pub(crate) fn new(kind: Kind, index: usize) -> UserData {
        UserData((u64::from(kind as u8) << INDEX_BITS) | (index as u64 & INDEX_MASK))
    }

    /// The kind, or `None` for a value we never issued.
    pub(crate) fn kind(self) -> Option<Kind> {
        Kind::from_u8((self.0 >> INDEX_BITS) as u8)
    }

    /// The index within the kind's table.
    pub(crate) fn index(self) -> usize {
        (self.0 & INDEX_MASK) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for kind in [
            Kind::UdpRecv,
            Kind::UdpSend,
            Kind::Tick,
            Kind::Wake,
            Kind::Deadline,
        ] {
            for index in [0usize, 1, 4095, (1 << 56) - 1] {
                let u = UserData::new(kind, index);
                assert_eq!(u.kind(), Some(kind));
                assert_eq!(u.index(), index);
            }
        }
        assert_eq!(UserData(0).kind(), None);
        assert_eq!(UserData(u64::MAX).kind(), None);
    }
}
