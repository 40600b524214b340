"""Who is represented: thick models of value, their aggregation, and mandates.

Pure and deterministic: nothing here touches a bus, a database or the network.
"""

from constituencies.assessment import Assessment, AssessmentTable, AssessorKind
from constituencies.cards import Context, ValuesCard
from constituencies.constituency import Constituency, Constituent, WiserThanVote
from constituencies.hashing import content_hash
from constituencies.mandate import Mandate, RedLine
from constituencies.value_model import CardContribution, UtilityBreakdown, ValueModel

__all__ = [
    "Assessment",
    "AssessmentTable",
    "AssessorKind",
    "CardContribution",
    "Constituency",
    "Constituent",
    "Context",
    "Mandate",
    "RedLine",
    "UtilityBreakdown",
    "ValueModel",
    "ValuesCard",
    "WiserThanVote",
    "content_hash",
]
