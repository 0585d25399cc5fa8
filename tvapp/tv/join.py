"""How the TV gets into a room (`JoinPlan`) and why it is not in one (`JoinProblem`), in words for the sofa.

The session (tvapp.tv.session) follows a JoinPlan: an access token, an invite code (redeemed for a guest token), or,
given an API key (the embedded core's, or one passed on the command line), a room to host: `credentials` creates the
room, issues the TV's own token and an invite code for the room bar (`new_invite`, which the session calls again
before the code expires). What goes wrong becomes a JoinProblem whose error screen says it in words (server error
codes are mapped here), never a traceback. A TV kept out of its room by something another try can fix tries the
same plan again by itself (`RejoinTries`) until it is back in.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
from dataclasses import dataclass
from typing import Protocol

from tvapp.client.rest import ApiError, RestClient
from tvapp.client.trust import PinMismatch
from tvapp.core.rejoin import rejoin_delay, should_rejoin
from tvapp.tv.scene import ErrorScreen

log = logging.getLogger("tvapp.tv.session")  # the rejoin tries log as the session always did


@dataclass(frozen=True)
class JoinPlan:
    """How the TV gets into a room: exactly one of `token`, `invite` or `room` (with `api_key`).

    With `token`, `invite` is the code it was redeemed from (shown for others). `fingerprint` is the certificate
    pinned for an https `server` (tvapp.client.trust holds the pin). `keep_trying` False: a first join that fails is
    shown and not retried (a join a remote asked for on another core); rejoins after a drop are tried as always.
    """

    server: str
    token: str | None = None
    refresh_token: str | None = None
    invite: str | None = None
    room: str | None = None
    api_key: tuple[str, str] | None = None
    identity: str = ""
    name: str = ""
    fingerprint: str | None = None
    keep_trying: bool = True


class JoinProblem(Exception):
    """Why the TV is not in its room, in words for the error screen; `code` is the reason for tvapp.core.rejoin."""

    def __init__(self, title: str, message: str, hint: str = "", code: str = "") -> None:
        super().__init__(f"{title}: {message}")
        self.code = code
        self.screen = ErrorScreen(title=title, message=message, hint=hint)

    def retrying(self) -> JoinProblem:
        """Return the same problem saying that the TV tries again by itself (no restart needed)."""
        screen = self.screen
        return JoinProblem(screen.title, screen.message, RETRY_HINT, self.code)


RETRY_HINT = "The TV keeps trying and rejoins by itself when the server is back."


# Server error codes -> (title, message, hint) for people on a sofa.
_WORDS: dict[str, tuple[str, str, str]] = {
    "invite_not_found": ("Invite not valid", "This invite code does not exist.", "Check the code, or ask for a new one."),
    "invite_expired": ("Invite expired", "This invite code is no longer valid.", "Ask the host for a new code."),
    "invite_used_up": ("Invite used up", "This invite code has been used as often as it may.",
                       "Ask the host for a new code."),
    "too_many_attempts": ("Too many tries", "Too many wrong codes were entered.", "Wait a minute and try again."),
    "room_full": ("Room full", "This room already has as many people as it can hold.", "Try again when someone leaves."),
    "room_not_found": ("No such room", "The room does not exist (any more).", "Ask the host to start it again."),
    "room_completed": ("The room has ended", "The host closed this room.", ""),
    "removed": ("Removed from the room", "The host removed this TV from the room.", ""),
    "token_expired": ("Sign-in expired", "The TV's access token has expired.", "Start the TV with a new token."),
    "token_revoked": ("Sign-in revoked", "The TV's access token was revoked.", "Start the TV with a new token."),
    "invalid_token": ("Sign-in refused", "The server did not accept the TV's access token.",
                      "Start the TV with a token from this server."),
    "invalid_credentials": ("Sign-in refused", "The server did not accept the API key.", "Check the key and secret."),
    "not_allowed": ("Not allowed", "The TV's token does not allow joining this room.", ""),
}


def problem_for(code: str, message: str = "") -> JoinProblem:
    """Return the error screen words for a server error code."""
    title, text, hint = _WORDS.get(code, ("Cannot join", message or f"The server refused ({code}).", ""))
    return JoinProblem(title, text, hint, code)


def unreachable(server: str, exc: BaseException) -> JoinProblem:
    """Return the words for a server that does not answer, or whose certificate the TV cannot trust."""
    cause = getattr(exc, "reason", None)
    cause = cause if isinstance(cause, BaseException) else exc.__cause__ or exc.__context__ or exc
    for candidate in (exc, cause):
        if isinstance(candidate, PinMismatch):
            return JoinProblem("Wrong certificate", f"The server at {server} did not show the certificate the invite "
                               "link pins (#fp=).", "Check the link with the server's owner.", "fingerprint_mismatch")
        if isinstance(candidate, ssl.SSLError):
            return JoinProblem("Secure connection failed", f"The TV cannot check the certificate of {server} "
                               f"({getattr(candidate, 'verify_message', None) or candidate.reason or 'TLS error'}).",
                               "A server with a self-signed certificate needs its #fp=sha256:… in the link.",
                               "tls_failed")
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return JoinProblem("Server unreachable", f"Cannot reach the server at {server} ({reason}).",
                       "Check the network, or that the server is running.", "unreachable")


def disconnected(reason: str) -> JoinProblem:
    """Return the words for a room that ended the TV's connection for `reason` (a server code, or a lost link)."""
    if reason in _WORDS:
        return problem_for(reason)
    return JoinProblem("Connection lost", "The TV lost its connection to the room.",
                       "Check the network; restart the TV to join again.", reason)


@dataclass(frozen=True)
class Credentials:
    """What a plan got the TV: its tokens, and the invite code to show others (expiring at `invite_expires`, wall
    time, when the TV hosts: 0 otherwise)."""

    token: str
    refresh_token: str | None
    invite_code: str | None = None
    invite_expires: float = 0.0


async def credentials(plan: JoinPlan) -> Credentials:
    """Return the tokens `plan` gets the TV in with; raise JoinProblem (in words) when it cannot get them."""
    identity = plan.identity or "tv-" + secrets.token_hex(4)
    try:
        if plan.token:  # `invite`: the code it was redeemed from, to show others the way in
            return Credentials(plan.token, plan.refresh_token, plan.invite)
        if plan.invite:
            code = plan.invite.strip()
            pair = await RestClient(plan.server).redeem_invite(code, identity, name=plan.name)
            return Credentials(pair.access_token, pair.refresh_token, code)
        if plan.room and plan.api_key:
            api = RestClient(plan.server, api_key=plan.api_key)
            try:
                await api.create_room(plan.room)
            except ApiError as exc:
                if exc.code != "room_exists":  # an open room of that name: join it
                    raise
            pair = await api.issue_token(plan.room, identity, name=plan.name,
                                         grants={"host": True, "publish": True, "publish_data": True})
            code, expires = await new_invite(plan)
            return Credentials(pair.access_token, pair.refresh_token, code, expires)
    except ApiError as exc:
        if exc.status == 0:
            raise unreachable(plan.server, exc) from None
        raise problem_for(exc.code, exc.message) from None
    except (OSError, ValueError) as exc:
        raise unreachable(plan.server, exc) from None
    raise JoinProblem("Nothing to join", "The TV was given no room, invite code or token.",
                      "Start it with --room NAME, --invite CODE or --token T.", "nothing_to_join")


async def new_invite(plan: JoinPlan) -> tuple[str, float]:
    """Create an invite code for the room `plan` hosts (it has `room` and `api_key`); return it and its expiry."""
    assert plan.room and plan.api_key
    invite = await RestClient(plan.server, api_key=plan.api_key).create_invite(plan.room)
    return invite.code, float(invite.expires_at)


class Rejoining(Protocol):
    """What `RejoinTries` needs of the session it gets back in (tvapp.tv.session.TvSession)."""

    @property
    def plan(self) -> JoinPlan | None: ...
    @property
    def room(self) -> object: ...
    @property
    def room_name(self) -> str: ...
    @property
    def hosting(self) -> bool: ...
    async def switch(self, plan: JoinPlan | None) -> None: ...


class RejoinTries:
    """The TV's tries to get back into its session's plan after growing pauses, one task at a time, until the TV is
    in, the plan changes, or a try cannot help (tvapp.core.rejoin decides which reasons and how long to wait)."""

    def __init__(self, session: Rejoining) -> None:
        self._session = session
        self._task: asyncio.Task[None] | None = None

    def running_here(self) -> bool:
        """Tell whether the current task is these tries (a switch they make does not end them)."""
        return asyncio.current_task() is self._task

    def start(self) -> None:
        """Start trying to get back into the current plan's room, unless that is under way already."""
        plan = self._session.plan
        if self._task is None and plan is not None:
            self._task = asyncio.create_task(self._loop(plan), name="tv rejoin")

    def stop(self) -> None:
        """End the tries (not from within them: a try that got in ends by itself)."""
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _loop(self, plan: JoinPlan) -> None:
        """Try `plan` again after growing pauses until the TV is in, or the plan changes, or a try cannot help."""
        session = self._session
        attempt = 0
        try:
            while session.plan is plan:
                await asyncio.sleep(rejoin_delay(attempt))
                attempt += 1
                if session.plan is not plan or session.room is not None:
                    return
                try:
                    await session.switch(plan)
                    log.info("tv: back in room %s after %d tries", session.room_name, attempt)
                    return
                except JoinProblem as problem:
                    if not should_rejoin(problem.code, hosting=session.hosting):
                        return
                    log.info("tv: rejoin try %d failed (%s)", attempt, problem.code)
        finally:
            if self._task is asyncio.current_task():
                self._task = None
