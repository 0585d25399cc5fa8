"""Active speaker detection from RFC 6464 audio levels: who is speaking, loudest first, and who has the floor.

The server reads the audio-level header extension of each incoming audio packet (-dBov: 0 is the loudest,
127 silence) and calls `ActiveSpeakerDetector.update(levels, now_ms)` every 50-100 ms with the loudest
level each participant sent in that window (None when no packet came). The detector returns a
`SpeakerDecision` only when the ordered list of speakers or the dominant speaker changed; `remove(sid)`
forgets a participant who left.

How it decides (each update is one window, ending at `now_ms` and starting at the previous update):

1. Voice. A window is voiced when its level is at most `voice_dbov` (speech sits at 20-40 -dBov, room noise
   and silence at 70-127). Loudness does not weigh in who has the floor, because microphones and gains
   differ between devices: a quiet speaker must be able to take the floor from a loud one.
2. Activity. Each participant's activity is the share of recent time that was voiced: an exponential
   average over time of the voiced flag, rising with time constant `attack_ms` and falling with the longer
   `release_ms`, so the 100-200 ms gaps between words barely dent it while a speaker who stopped fades.
   Each update weighs by the time since the previous one, so the call rate does not matter.
3. Speaking. A participant joins the speakers list when activity reaches `speaking_on` and leaves it when it
   falls below `speaking_off` (hysteresis: no flicker at the edge). The list is ordered by smoothed loudness
   (`voice_dbov`..`full_dbov` mapped to 0..1, the reported level); two speakers swap places only when the
   lower one is louder by `order_margin`, so the order does not flap with level jitter.
4. Talk spurts. Voiced windows less than `talk_gap_ms` of silence apart form one talk spurt. Windows blur
   time, so durations are counted only as far as the windows prove them: a spurt has lasted at least from
   the end of its first voiced window to the start of the current one, and a participant has been quiet at
   least since the end of its last voiced window.
5. Floor. The first speaker takes the floor. After that a challenger, voiced in the current window, takes
   it when either
   - the dominant has been quiet for `quiet_ms` (longer than a gap between words), the challenger's spurt
     has lasted `min_talk_ms`, and its activity is above the dominant's (a clean change of speaker), or
   - its activity has stayed above the dominant's by `switch_margin` for `hold_ms` (it out-talks a
     dominant who keeps making sounds).
   An interjection while the dominant goes on talking never finds the dominant quiet, nor out-talks it for
   long. After a clean change the new speaker wins 300-450 ms after its first word (median about 355 ms,
   p90 about 455 ms in `bench/speaker_switch.py`, with updates every 50-100 ms). Only a voiced challenger
   can win, so noise and silence never take the floor, and when everyone falls silent the dominant keeps
   it (it is the last speaker) until someone else talks or it is removed. An interjection that falls
   wholly into a pause of the dominant (a breath between sentences) looks, while it lasts, exactly like a
   clean change; the bench counts those apart.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

FIRST_STEP_MS = 50.0  # how long the first window counts: there is no previous update to measure from
MAX_STEP_MS = 1000.0  # a longer pause between updates counts as this long


@dataclass(frozen=True, slots=True)
class SpeakerDecision:
    """Who is speaking (sid and level 0..1, loudest first) and who has the floor (None: nobody yet)."""

    speakers: tuple[tuple[str, float], ...]
    dominant: str | None


@dataclass(slots=True)
class _Voice:
    activity: float = 0.0
    loudness: float = 0.0
    speaking: bool = False
    voiced_now: bool = False
    talk_from: float | None = None  # end of the first voiced window of the current talk spurt
    voiced_until: float | None = None  # end of the latest voiced window
    lead_since: float | None = None  # since when activity has been above the dominant's by the margin


class ActiveSpeakerDetector:
    """Turns per-participant audio levels over time into speaker lists and a dominant speaker."""

    def __init__(self, *, voice_dbov: float = 50.0, full_dbov: float = 10.0, attack_ms: float = 150.0,
                 release_ms: float = 300.0, speaking_on: float = 0.35, speaking_off: float = 0.1,
                 talk_gap_ms: float = 250.0, quiet_ms: float = 250.0, min_talk_ms: float = 200.0,
                 switch_margin: float = 0.1, hold_ms: float = 250.0, loudness_ms: float = 200.0,
                 order_margin: float = 0.08) -> None:
        if not full_dbov < voice_dbov:
            raise ValueError("full_dbov must be louder (smaller) than voice_dbov")
        if min(attack_ms, release_ms, loudness_ms) <= 0:
            raise ValueError("attack_ms, release_ms and loudness_ms must be positive")
        if not 0 <= speaking_off <= speaking_on <= 1:
            raise ValueError("need 0 <= speaking_off <= speaking_on <= 1")
        if min(talk_gap_ms, quiet_ms, min_talk_ms, switch_margin, hold_ms, order_margin) < 0:
            raise ValueError("durations and margins must not be negative")
        self.voice_dbov = voice_dbov
        self.full_dbov = full_dbov
        self.attack_ms = attack_ms
        self.release_ms = release_ms
        self.speaking_on = speaking_on
        self.speaking_off = speaking_off
        self.talk_gap_ms = talk_gap_ms
        self.quiet_ms = quiet_ms
        self.min_talk_ms = min_talk_ms
        self.switch_margin = switch_margin
        self.hold_ms = hold_ms
        self.loudness_ms = loudness_ms
        self.order_margin = order_margin
        self._voices: dict[str, _Voice] = {}
        self._order: list[str] = []
        self._dominant: str | None = None
        self._last_ms: float | None = None
        self._step_ms = 0.0  # length of the current window
        self._last_decision = SpeakerDecision((), None)

    @property
    def dominant(self) -> str | None:
        """Return the participant who has the floor, or None."""
        return self._dominant

    def update(self, levels: Mapping[str, float | None], now_ms: float) -> SpeakerDecision | None:
        """Take each participant's loudest level (-dBov) of the window ending at `now_ms`; return a change.

        A participant missing from `levels` counts as silent in this window (as None does).
        """
        last, self._last_ms = self._last_ms, now_ms
        self._step_ms = FIRST_STEP_MS if last is None else min(max(now_ms - last, 0.0), MAX_STEP_MS)
        for sid in levels.keys() - self._voices.keys():
            self._voices[sid] = _Voice()
        for sid, voice in self._voices.items():
            self._listen(voice, levels.get(sid), now_ms)
        self._choose_dominant(now_ms)
        self._reorder()
        return self._decide()

    def remove(self, sid: str) -> SpeakerDecision | None:
        """Forget a participant (it left or stopped publishing audio); return a change if that made one."""
        if self._voices.pop(sid, None) is None:
            return None
        if self._dominant == sid:
            self._dominant = None
            speaking = [s for s, v in self._voices.items() if v.speaking]
            if speaking:
                self._dominant = max(speaking, key=lambda s: self._voices[s].activity)
        self._reorder()
        return self._decide()

    def _listen(self, voice: _Voice, level: float | None, now_ms: float) -> None:
        step = self._step_ms
        voice.voiced_now = level is not None and level <= self.voice_dbov
        if level is not None and voice.voiced_now:
            if voice.voiced_until is None or now_ms - step - voice.voiced_until > self.talk_gap_ms:
                voice.talk_from = now_ms
            voice.voiced_until = now_ms
            loud = min(1.0, (self.voice_dbov - level) / (self.voice_dbov - self.full_dbov))
            if voice.loudness == 0.0:
                voice.loudness = loud
            voice.loudness += (loud - voice.loudness) * (1.0 - math.exp(-step / self.loudness_ms))
        target = 1.0 if voice.voiced_now else 0.0
        tau = self.attack_ms if target > voice.activity else self.release_ms
        voice.activity += (target - voice.activity) * (1.0 - math.exp(-step / tau))
        if voice.activity >= self.speaking_on:
            voice.speaking = True
        elif voice.activity < self.speaking_off:
            voice.speaking = False
            voice.loudness = 0.0

    def _choose_dominant(self, now_ms: float) -> None:
        speaking = [s for s, v in self._voices.items() if v.speaking]
        if self._dominant is None:
            if speaking:
                self._dominant = max(speaking, key=lambda s: self._voices[s].activity)
            return
        dom = self._voices[self._dominant]
        floor = dom.activity + self.switch_margin
        quiet = dom.voiced_until is None or now_ms - dom.voiced_until >= self.quiet_ms
        best: tuple[float, str] | None = None
        for sid, voice in self._voices.items():
            if sid == self._dominant:
                continue
            if not voice.speaking or voice.activity <= floor:
                voice.lead_since = None
            elif voice.lead_since is None:
                voice.lead_since = now_ms
            if not voice.speaking or not voice.voiced_now or voice.talk_from is None:
                continue
            talked = now_ms - self._step_ms - voice.talk_from
            took_over = quiet and talked >= self.min_talk_ms and voice.activity > dom.activity
            outtalked = voice.lead_since is not None and now_ms - voice.lead_since >= self.hold_ms
            if (took_over or outtalked) and (best is None or voice.activity > best[0]):
                best = (voice.activity, sid)
        if best is not None:
            self._dominant = best[1]
            for voice in self._voices.values():
                voice.lead_since = None

    def _reorder(self) -> None:
        order = [s for s in self._order if s in self._voices and self._voices[s].speaking]
        order += sorted((s for s, v in self._voices.items() if v.speaking and s not in order),
                        key=lambda s: -self._voices[s].loudness)
        loudness = {s: self._voices[s].loudness for s in order}
        for i in range(1, len(order)):
            j = i
            while j > 0 and loudness[order[j]] > loudness[order[j - 1]] + self.order_margin:
                order[j - 1], order[j] = order[j], order[j - 1]
                j -= 1
        self._order = order

    def _decide(self) -> SpeakerDecision | None:
        last = self._last_decision
        if self._dominant == last.dominant and tuple(self._order) == tuple(s for s, _ in last.speakers):
            return None
        speakers = tuple((s, round(min(1.0, max(0.0, self._voices[s].loudness)), 3)) for s in self._order)
        self._last_decision = SpeakerDecision(speakers, self._dominant)
        return self._last_decision
