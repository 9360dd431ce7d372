"""Small, real, playable MP4 files from Pillow frames, with no video encoder installed.

The video stream is H.264 Baseline in which every macroblock is I_PCM: the picture's samples
are stored as they are, so "encoding" is only writing headers around raw YUV 4:2:0 bytes. The
files are big for their size (384 bytes per 16x16 block per frame) but any H.264 decoder plays
them, which is all a simulator needs: a gateway or client that downloads `videoUrl` gets a file
that players, browsers and `ffprobe` accept. Why not a library: PyAV or imageio-ffmpeg would pull
tens of megabytes of FFmpeg into the runtime for test data; this is ~150 lines of well-specified
container and bitstream layout (ITU-T H.264 §7.3, ISO/IEC 14496-12 and 14496-15).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence

from PIL import Image

MB = 16  # macroblock size; frame sides must be multiples of it
PROFILE_BASELINE = 66
CONSTRAINTS = 0xC0  # constraint_set0 and constraint_set1: decodable by Baseline and Main decoders
LEVEL = 30  # 3.0: bounds nothing a decoder enforces for these sizes
TIMESCALE = 1000  # media time in milliseconds
_EMULATION = re.compile(b"\x00\x00(?=[\x00-\x03])")

# Full-range (JPEG) YCbCr from Pillow to the limited range H.264 assumes without VUI; the
# ranges also keep every sample >= 16, so raw samples never look like a start code.
_LUMA = [16 + round(v * 219 / 255) for v in range(256)]
_CHROMA = [16 + round(v * 224 / 255) for v in range(256)]


class _Bits:
    """MSB-first bit writer with H.264's Exp-Golomb codes."""

    def __init__(self) -> None:
        self._out = bytearray()
        self._acc = 0
        self._n = 0

    def u(self, n: int, value: int) -> None:
        for i in range(n - 1, -1, -1):
            self._acc = (self._acc << 1) | ((value >> i) & 1)
            self._n += 1
            if self._n == 8:
                self._out.append(self._acc)
                self._acc = self._n = 0

    def ue(self, value: int) -> None:
        code = value + 1
        length = code.bit_length()
        self.u(length - 1, 0)
        self.u(length, code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align_zero(self) -> None:
        while self._n:
            self.u(1, 0)

    def raw(self, data: bytes) -> None:
        assert self._n == 0, "raw bytes need byte alignment"
        self._out += data

    def trailing(self) -> bytes:
        """rbsp_trailing_bits: a stop bit, then zeros to the byte boundary."""
        self.u(1, 1)
        self.align_zero()
        return bytes(self._out)


def _nal(ref_idc: int, nal_type: int, rbsp: bytes) -> bytes:
    # Emulation prevention: no 00 00 0x (x <= 3) may appear inside a NAL unit.
    return bytes([(ref_idc << 5) | nal_type]) + _EMULATION.sub(b"\x00\x00\x03", rbsp)


def _sps(width_mbs: int, height_mbs: int) -> bytes:
    b = _Bits()
    b.u(8, PROFILE_BASELINE)
    b.u(8, CONSTRAINTS)
    b.u(8, LEVEL)
    b.ue(0)  # seq_parameter_set_id
    b.ue(0)  # log2_max_frame_num_minus4
    b.ue(2)  # pic_order_cnt_type 2: order follows decoding order, nothing in slice headers
    b.ue(1)  # max_num_ref_frames
    b.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    b.ue(width_mbs - 1)
    b.ue(height_mbs - 1)
    b.u(1, 1)  # frame_mbs_only_flag
    b.u(1, 1)  # direct_8x8_inference_flag
    b.u(1, 0)  # frame_cropping_flag
    b.u(1, 0)  # vui_parameters_present_flag
    return _nal(3, 7, b.trailing())


def _pps() -> bytes:
    b = _Bits()
    b.ue(0)  # pic_parameter_set_id
    b.ue(0)  # seq_parameter_set_id
    b.u(1, 0)  # entropy_coding_mode_flag: CAVLC
    b.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
    b.ue(0)  # num_slice_groups_minus1
    b.ue(0)  # num_ref_idx_l0_default_active_minus1
    b.ue(0)  # num_ref_idx_l1_default_active_minus1
    b.u(1, 0)  # weighted_pred_flag
    b.u(2, 0)  # weighted_bipred_idc
    b.se(0)  # pic_init_qp_minus26
    b.se(0)  # pic_init_qs_minus26
    b.se(0)  # chroma_qp_index_offset
    b.u(1, 0)  # deblocking_filter_control_present_flag
    b.u(1, 0)  # constrained_intra_pred_flag
    b.u(1, 0)  # redundant_pic_cnt_present_flag
    return _nal(3, 8, b.trailing())


def _planes(frame: Image.Image) -> tuple[bytes, bytes, bytes]:
    y, cb, cr = frame.convert("YCbCr").split()
    half = (frame.width // 2, frame.height // 2)
    return (
        y.point(_LUMA).tobytes(),
        cb.resize(half, Image.Resampling.BOX).point(_CHROMA).tobytes(),
        cr.resize(half, Image.Resampling.BOX).point(_CHROMA).tobytes(),
    )


def _idr_slice(frame: Image.Image, idr_pic_id: int) -> bytes:
    """One IDR picture, every macroblock I_PCM."""
    w, h = frame.size
    luma, cb, cr = _planes(frame)
    cw = w // 2
    b = _Bits()
    b.ue(0)  # first_mb_in_slice
    b.ue(7)  # slice_type: I, and every slice of the picture is I
    b.ue(0)  # pic_parameter_set_id
    b.u(4, 0)  # frame_num (log2_max_frame_num = 4): always 0 in an IDR picture
    b.ue(idr_pic_id)  # consecutive IDR pictures must differ here
    b.u(1, 0)  # dec_ref_pic_marking: no_output_of_prior_pics_flag
    b.u(1, 0)  # dec_ref_pic_marking: long_term_reference_flag
    b.se(0)  # slice_qp_delta
    for my in range(h // MB):
        for mx in range(w // MB):
            b.ue(25)  # mb_type I_PCM
            b.align_zero()  # pcm_alignment_zero_bit
            x, y = mx * MB, my * MB
            block = bytearray()
            for row in range(y, y + MB):
                block += luma[row * w + x : row * w + x + MB]
            for plane in (cb, cr):
                for row in range(y // 2, y // 2 + MB // 2):
                    block += plane[row * cw + x // 2 : row * cw + x // 2 + MB // 2]
            b.raw(bytes(block))
    return _nal(3, 5, b.trailing())


# ---- ISO base media file format ---------------------------------------------------------------


def _box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *parts)


_MATRIX = struct.pack(">9i", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _avc1(width: int, height: int, sps: bytes, pps: bytes) -> bytes:
    avcc = _box(
        b"avcC",
        bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]),  # 4-byte NAL lengths, one SPS
        struct.pack(">H", len(sps)),
        sps,
        bytes([1]),
        struct.pack(">H", len(pps)),
        pps,
    )
    name = b"mjgate simulator"
    return _box(
        b"avc1",
        bytes(6),
        struct.pack(">H", 1),  # data_reference_index
        bytes(16),
        struct.pack(">HH", width, height),
        struct.pack(">II", 0x480000, 0x480000),  # 72 dpi
        bytes(4),
        struct.pack(">H", 1),  # frame_count
        bytes([len(name)]) + name + bytes(31 - len(name)),
        struct.pack(">Hh", 0x18, -1),
        avcc,
    )


def _moov(width: int, height: int, sizes: Sequence[int], delta: int, sps: bytes, pps: bytes, mdat_at: int) -> bytes:
    count = len(sizes)
    duration = count * delta
    stbl = _box(
        b"stbl",
        _full(b"stsd", 0, 0, struct.pack(">I", 1), _avc1(width, height, sps, pps)),
        _full(b"stts", 0, 0, struct.pack(">III", 1, count, delta)),
        _full(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, count, 1)),  # one chunk holds every sample
        _full(b"stsz", 0, 0, struct.pack(">II", 0, count), struct.pack(f">{count}I", *sizes)),
        _full(b"stco", 0, 0, struct.pack(">II", 1, mdat_at)),
        # No stss: every sample is a sync sample, which is true here (all IDR).
    )
    minf = _box(
        b"minf",
        _full(b"vmhd", 0, 1, bytes(8)),
        _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1), _full(b"url ", 0, 1))),
        stbl,
    )
    mdia = _box(
        b"mdia",
        _full(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, TIMESCALE, duration, 0x55C4, 0)),  # language "und"
        _full(b"hdlr", 0, 0, bytes(4), b"vide", bytes(12), b"VideoHandler\x00"),
        minf,
    )
    tkhd = _full(
        b"tkhd", 0, 3,  # enabled, in movie
        struct.pack(">IIIII", 0, 0, 1, 0, duration), bytes(8), struct.pack(">hhhH", 0, 0, 0, 0), _MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )
    mvhd = _full(
        b"mvhd", 0, 0,
        struct.pack(">IIIIiH", 0, 0, TIMESCALE, duration, 0x10000, 0x100), bytes(10), _MATRIX, bytes(24),
        struct.pack(">I", 2),  # next_track_ID
    )
    return _box(b"moov", mvhd, _box(b"trak", tkhd, mdia))


def encode(frames: Sequence[Image.Image], fps: int) -> bytes:
    """An MP4 of `frames` (all the same size, sides multiples of 16) at `fps` frames a second."""
    if not frames:
        raise ValueError("a video needs at least one frame")
    width, height = frames[0].size
    if width % MB or height % MB or any(f.size != (width, height) for f in frames):
        raise ValueError(f"frames must share one size whose sides are multiples of {MB}")
    sps, pps = _sps(width // MB, height // MB), _pps()
    samples = [_idr_slice(frame, i % 2) for i, frame in enumerate(frames)]
    sizes = [4 + len(s) for s in samples]  # each sample: a 4-byte length, then the NAL unit
    delta = max(1, round(TIMESCALE / fps))
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso2avc1mp41")
    # moov first ("fast start") so a player can begin before the whole file has arrived; its
    # size does not depend on the offset written into it, so measure it once with a dummy.
    moov_len = len(_moov(width, height, sizes, delta, sps, pps, 0))
    mdat_at = len(ftyp) + moov_len + 8
    moov = _moov(width, height, sizes, delta, sps, pps, mdat_at)
    mdat = _box(b"mdat", b"".join(struct.pack(">I", len(s)) + s for s in samples))
    return ftyp + moov + mdat
