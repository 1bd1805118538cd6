"""``--agent-name``, ``--agent-id``, ``--agent-documents``: who is at the counter when it is not
the holder (委托代办, docs/business-rules.md "Agents (委托代办)"). One set of options for every
command that records a request or a card service; whether an agent may do it is the
transition table's (``personalize.lifecycle``), never the command's."""

from __future__ import annotations

import argparse

from personalize.registry import AGENT_DOCUMENTS, Agent


def add_agent_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agent-name", help="代办人姓名 (an agent applying for the holder)")
    p.add_argument("--agent-id", help="代办人身份证号 (both IDs checked and copied)")
    p.add_argument(
        "--agent-documents",
        default=AGENT_DOCUMENTS,
        help=f"代办所验证件 (what the agent showed) [{AGENT_DOCUMENTS}]",
    )


def agent_of(args: argparse.Namespace) -> Agent | None:
    """The agent the command line names: both --agent-name and --agent-id, or neither (the
    holder in person)."""
    name, id_number = getattr(args, "agent_name", None), getattr(args, "agent_id", None)
    if not name and not id_number:
        return None
    if not (name and id_number):
        raise ValueError("代办须同时给出 --agent-name 和 --agent-id (an agent needs name and ID)")
    return Agent(name, id_number, getattr(args, "agent_documents", AGENT_DOCUMENTS))
