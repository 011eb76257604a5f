"""Disk layout: logical block numbers (LBNs) to physical sectors and back.

The mapping follows DiskSim's first-generation layout (``diskmodel/layout_g1.c``) for one zone
with *sectors-per-track sparing*, which is how the validated DEC RZ26 model is described
(CALIBRATION.md, "Disk: DEC RZ26"; ``hw/disk/rz26/params.toml``):

* Every track holds ``blocks_per_track`` physical sectors (58 on the RZ26); the last
  ``spares_per_track`` of them (1) are spares, so a track holds ``blocks_per_track -
  spares_per_track`` (57) logical blocks.
* Physical sectors are numbered cylinder by cylinder, surface by surface within a cylinder,
  sector by sector within a track. The first ``empty_space_at_zone_front`` (23 142 = 29
  cylinders' worth) data sectors of the zone hold no LBN: LBN 0 is data sector number
  ``empty_space_at_zone_front``. On the RZ26 the remaining space is exactly ``blocks`` long
  (36 386 tracks x 57 - 23 142 = 2 050 860).
* Skew: sector 0 of a track does not start at the platter's index mark. Moving to the next
  surface costs a head switch, and moving to the next cylinder a one-cylinder seek, during
  which the platter turns on; the drive therefore shifts each track's first sector by
  ``track_switch_skew`` (7) sectors per head switch and ``cylinder_switch_skew`` (25) sectors
  per cylinder switch, so that a sequential transfer finds the next sector just arriving.
  As in DiskSim, a cylinder holds ``surfaces - 1`` track switches and one cylinder switch, so
  track ``(c, h)`` starts ``first_block_offset + h * track_skew + c * ((surfaces - 1) *
  track_skew + cylinder_skew)`` sectors (mod ``blocks_per_track``) past the index.

The angular *slot* of a physical sector (``(skew + sector) mod blocks_per_track``) is what
the mechanism model (:mod:`hw.disk.mechanism`) matches against the platter's rotation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["Geometry", "Pbn"]


class Pbn(NamedTuple):
    """A physical block: cylinder, surface (head) and sector index within the track."""

    cylinder: int
    surface: int
    sector: int


@dataclass(frozen=True)
class Geometry:
    """One-zone disk layout with per-track spares, a dead zone front and track/cylinder skew.

    Parameters
    ----------
    surfaces, cylinders : int
        Recording surfaces (heads) and cylinders.
    blocks : int
        Logical blocks (512-byte sectors) the host can address.
    blocks_per_track : int
        Physical sectors per track, spares included.
    spares_per_track : int
        Spare sectors at the end of each track (hold no LBN).
    empty_space_at_zone_front : int
        Data sectors at the front of the zone that hold no LBN.
    track_switch_skew, cylinder_switch_skew : int
        Skew, in sectors, added per head switch and per cylinder switch.
    first_block_offset : int
        Angular offset, in sectors, of sector 0 of track (0, 0) from the index mark.

    Raises
    ------
    ValueError
        If a parameter is out of range or the zone is too small to hold ``blocks``.
    """

    surfaces: int
    cylinders: int
    blocks: int
    blocks_per_track: int
    spares_per_track: int = 0
    empty_space_at_zone_front: int = 0
    track_switch_skew: int = 0
    cylinder_switch_skew: int = 0
    first_block_offset: int = 0

    def __post_init__(self) -> None:
        for name in ("surfaces", "cylinders", "blocks", "blocks_per_track"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"geometry {name} must be a positive integer, not {value!r}")
        for name in ("spares_per_track", "empty_space_at_zone_front", "track_switch_skew",
                     "cylinder_switch_skew", "first_block_offset"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"geometry {name} must be a non-negative integer, not {value!r}")
        if self.spares_per_track >= self.blocks_per_track:
            raise ValueError(f"spares_per_track {self.spares_per_track} leaves no data sectors "
                             f"on a {self.blocks_per_track}-sector track")
        room = self.surfaces * self.cylinders * self.data_per_track - self.empty_space_at_zone_front
        if room < self.blocks:
            raise ValueError(f"the zone holds {room} blocks, fewer than the {self.blocks} "
                             f"blocks the geometry declares")

    # ---- derived sizes -------------------------------------------------------------------
    @property
    def data_per_track(self) -> int:
        """Logical blocks per track (physical sectors minus spares)."""
        return self.blocks_per_track - self.spares_per_track

    @property
    def data_per_cylinder(self) -> int:
        """Logical blocks per cylinder."""
        return self.data_per_track * self.surfaces

    # ---- mapping -------------------------------------------------------------------------
    def _check_lbn(self, lbn: int) -> None:
        if not isinstance(lbn, int) or isinstance(lbn, bool):
            raise TypeError(f"LBN must be an int, not {lbn!r}")
        if not 0 <= lbn < self.blocks:
            raise ValueError(f"LBN {lbn} is outside the disk (0 .. {self.blocks - 1})")

    def lbn_to_pbn(self, lbn: int) -> Pbn:
        """The physical sector holding ``lbn``.

        Raises
        ------
        ValueError
            If ``lbn`` is not on the disk.
        """
        self._check_lbn(lbn)
        d = lbn + self.empty_space_at_zone_front
        cylinder, rest = divmod(d, self.data_per_cylinder)
        surface, sector = divmod(rest, self.data_per_track)
        return Pbn(cylinder, surface, sector)

    def pbn_to_lbn(self, pbn: Pbn | tuple[int, int, int]) -> int:
        """The LBN stored in physical sector ``pbn`` (the inverse of :meth:`lbn_to_pbn`).

        Raises
        ------
        ValueError
            If ``pbn`` is off the disk, is a spare, or lies in the unmapped zone front or
            past the last LBN.
        """
        cylinder, surface, sector = pbn
        if not 0 <= cylinder < self.cylinders:
            raise ValueError(f"cylinder {cylinder} is outside the disk (0 .. {self.cylinders - 1})")
        if not 0 <= surface < self.surfaces:
            raise ValueError(f"surface {surface} is outside the disk (0 .. {self.surfaces - 1})")
        if not 0 <= sector < self.blocks_per_track:
            raise ValueError(f"sector {sector} is outside the track (0 .. {self.blocks_per_track - 1})")
        if sector >= self.data_per_track:
            raise ValueError(f"sector {sector} of track ({cylinder}, {surface}) is a spare and "
                             f"holds no LBN")
        d = cylinder * self.data_per_cylinder + surface * self.data_per_track + sector
        lbn = d - self.empty_space_at_zone_front
        if lbn < 0:
            raise ValueError(f"physical sector {tuple(pbn)} lies in the unmapped space at the "
                             f"zone front and holds no LBN")
        if lbn >= self.blocks:
            raise ValueError(f"physical sector {tuple(pbn)} lies past the last LBN")
        return lbn

    def track_skew(self, cylinder: int, surface: int) -> int:
        """Angular position (sectors past the index, ``0 .. blocks_per_track - 1``) of sector 0."""
        per_cylinder = (self.surfaces - 1) * self.track_switch_skew + self.cylinder_switch_skew
        return (self.first_block_offset + surface * self.track_switch_skew
                + cylinder * per_cylinder) % self.blocks_per_track

    def slot(self, pbn: Pbn | tuple[int, int, int]) -> int:
        """Angular slot (sector-sized arc past the index) that physical sector ``pbn`` occupies."""
        cylinder, surface, sector = pbn
        return (self.track_skew(cylinder, surface) + sector) % self.blocks_per_track

    def track_first_lbn(self, lbn: int) -> int:
        """First LBN on the track holding ``lbn`` (clipped to LBN 0 on the first mapped track)."""
        self._check_lbn(lbn)
        d = lbn + self.empty_space_at_zone_front
        return max(0, d - d % self.data_per_track - self.empty_space_at_zone_front)

    def track_last_lbn(self, lbn: int) -> int:
        """Last LBN on the track holding ``lbn`` (clipped to the last LBN of the disk)."""
        self._check_lbn(lbn)
        d = lbn + self.empty_space_at_zone_front
        last = d - d % self.data_per_track + self.data_per_track - 1 - self.empty_space_at_zone_front
        return min(self.blocks - 1, last)
