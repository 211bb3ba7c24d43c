"""The relocation types stencils may carry, by ELF number, per machine.

pyelftools does not name every type we meet (R_X86_64_GOTPCRELX,
R_AARCH64_LDST128_ABS_LO12_NC), so the numbers here come from the x86-64
psABI and Arm's ELF for the Arm 64-bit Architecture.  A type missing from
these tables is an error at build time, never skipped.
"""

from __future__ import annotations

X86_64: dict[int, str] = {
    1: "R_X86_64_64",
    2: "R_X86_64_PC32",
    4: "R_X86_64_PLT32",
    9: "R_X86_64_GOTPCREL",
    10: "R_X86_64_32",
    11: "R_X86_64_32S",
    24: "R_X86_64_PC64",
    41: "R_X86_64_GOTPCRELX",
    42: "R_X86_64_REX_GOTPCRELX",
}

AARCH64: dict[int, str] = {
    257: "R_AARCH64_ABS64",
    258: "R_AARCH64_ABS32",
    260: "R_AARCH64_PREL64",
    261: "R_AARCH64_PREL32",
    263: "R_AARCH64_MOVW_UABS_G0",
    264: "R_AARCH64_MOVW_UABS_G0_NC",
    265: "R_AARCH64_MOVW_UABS_G1",
    266: "R_AARCH64_MOVW_UABS_G1_NC",
    267: "R_AARCH64_MOVW_UABS_G2",
    268: "R_AARCH64_MOVW_UABS_G2_NC",
    269: "R_AARCH64_MOVW_UABS_G3",
    274: "R_AARCH64_ADR_PREL_LO21",
    275: "R_AARCH64_ADR_PREL_PG_HI21",
    277: "R_AARCH64_ADD_ABS_LO12_NC",
    278: "R_AARCH64_LDST8_ABS_LO12_NC",
    279: "R_AARCH64_TSTBR14",
    280: "R_AARCH64_CONDBR19",
    282: "R_AARCH64_JUMP26",
    283: "R_AARCH64_CALL26",
    284: "R_AARCH64_LDST16_ABS_LO12_NC",
    285: "R_AARCH64_LDST32_ABS_LO12_NC",
    286: "R_AARCH64_LDST64_ABS_LO12_NC",
    299: "R_AARCH64_LDST128_ABS_LO12_NC",
    311: "R_AARCH64_ADR_GOT_PAGE",
    312: "R_AARCH64_LD64_GOT_LO12_NC",
}

BY_MACHINE: dict[str, dict[int, str]] = {"EM_X86_64": X86_64, "EM_AARCH64": AARCH64}

# A 64-bit absolute slot, used for the GOT entries we synthesise.
ABS64 = {"EM_X86_64": "R_X86_64_64", "EM_AARCH64": "R_AARCH64_ABS64"}

# What a reference through a GOT becomes once the GOT entry is ours: the same
# instruction, now addressing our entry directly.
GOT_REWRITE = {
    "R_X86_64_GOTPCREL": "R_X86_64_PC32",
    "R_X86_64_GOTPCRELX": "R_X86_64_PC32",
    "R_X86_64_REX_GOTPCRELX": "R_X86_64_PC32",
    "R_AARCH64_ADR_GOT_PAGE": "R_AARCH64_ADR_PREL_PG_HI21",
    "R_AARCH64_LD64_GOT_LO12_NC": "R_AARCH64_LDST64_ABS_LO12_NC",
}

ALL: frozenset[str] = frozenset(X86_64.values()) | frozenset(AARCH64.values())
