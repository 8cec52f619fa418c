"""Keyword triage: what stands in for the AI when none is configured or it keeps failing.

Deterministic and free of I/O. The policy is the category catalog's keywords (the admin's; tickets/categories.py
has the defaults) and the tables below (priority, sentiment and language); the functions only count whole-word,
case-insensitive matches against them. The notes name the keywords that decided, so an agent can see why a
ticket landed where it did.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from helpgate.tickets.categories import CategoryEntry
from helpgate.workflows.ai.triage import (
    DEFAULT_CATEGORIES,
    FALLBACK_CATEGORY,
    Priority,
    Sentiment,
    SkillInfo,
    TicketText,
    Triage,
    clamp,
)

# fmt: off
# Urgency: said outright, or implied by who and what it hits (many people, money, data, security, the law, danger)
# or by an incident that began hours ago. English first, then German, French, Spanish, Dutch, Portuguese, Italian.
HIGH_PRIORITY = ("urgent", "urgently", "asap", "as soon as possible", "emergency", "critical", "outage", "down",
                 "hurry", "data breach", "security breach", "breach of", "data loss", "lost data", "data lost",
                 "hacked", "compromised",
                 "cannot log in for everyone", "nobody can", "no one can", "all agents", "all users", "all our",
                 "everyone in", "everyone at", "for everyone", "whole team", "entire team", "cannot work", "can't work",
                 "legal proceedings",
                 "lawyer", "subpoena", "police", "production is down", "production line", "deadline", "losing",
                 "suspended", "chaos", "vulnerability", "security issue", "exposed", "sensitive", "dispute",
                 # danger (issue 18's cues)
                 "on fire", "burning", "smoke",
                 "dringend", "eilig", "sofort", "so schnell wie möglich", "ausgefallen", "feuer", "brennt", "gehackt",
                 "urgence", "au plus vite", "rapidement", "en panne", "bloquée", "piraté",
                 "urgente", "urgencia", "lo antes posible", "cuanto antes", "caído", "hackeado",
                 "spoed", "zo snel mogelijk", "zit stil", "ligt plat", "help!",
                 "o mais rápido possível", "o quanto antes", "invadida", "invadido", "quanto prima",
                 # the same kinds of cue in other words and the other languages: said outright; many people stopped;
                 # money lost; an incident since last night or this morning; data lost or leaked; the law; danger
                 "notfall", "dès que possible", "emergencia", "noodgeval", "emergência", "al più presto", "emergenza",
                 "nobody is able", "no one is able", "whole company", "entire company", "whole department",
                 "all customers", "every customer", "ganze team", "ganzes team", "niemand kann", "alle kunden",
                 "toute l'équipe", "personne ne peut", "tous nos clients", "todo el equipo", "nadie puede",
                 "todos los clientes", "hele team", "hele afdeling", "niemand kan", "alle klanten", "toda a equipe",
                 "ninguém consegue", "todos os clientes", "tutto il team", "nessuno può", "tutti i clienti",
                 "losing money", "losing sales", "lost sales", "costing us",
                 "since this morning", "since last night", "overnight", "seit heute morgen", "seit heute nacht",
                 "depuis ce matin", "depuis cette nuit", "desde esta mañana", "desde anoche", "sinds vanochtend",
                 "sinds vanmorgen", "sinds vannacht", "desde hoje de manhã", "desde esta manhã", "da stamattina",
                 "da stanotte",
                 "datenverlust", "perte de données", "pérdida de datos", "dataverlies", "perda de dados",
                 "perdita di dati", "data leak", "leaked", "unauthorized access", "unauthorised access", "xss",
                 "sql injection", "sicherheitslücke", "datenleck", "faille de sécurité", "fuite de données",
                 "vulnerabilidad", "datalek", "vulnerabilidade", "vazamento", "vulnerabilità",
                 "attorney", "lawsuit", "legal action", "anwalt", "rechtsanwalt", "avocat", "abogado", "advocaat",
                 "advogado", "avvocato",
                 "dangerous", "injured", "electric shock", "gefährlich", "dangereux", "peligroso", "gevaarlijk",
                 "perigoso", "pericoloso",
                 # not one mail gets through; an account taken over; the law in its own words
                 "not a single", "kein einziger", "keine einzige", "pas un seul", "pas une seule", "ni un solo",
                 "ni una sola", "geen enkele", "nem um único", "nem uma única", "neanche un", "nemmeno un",
                 "invadi*", "suspicious login", "verdächtige anmeldung", "connexion suspecte",
                 "inicio de sesión sospechoso", "verdachte login", "login suspeito",
                 "pursuant to", "letter before action", "infringement", "cease and desist", "court", "tribunal",
                 "gericht", "abmahnung", "mise en demeure", "juzgado", "demanda judicial", "rechtbank",
                 "ingebrekestelling", "processo judicial", "tribunale", "diffida")
# Many people stopped, counted in the sentence that says they are ("120 agents are stuck", "São 30 atendentes
# parados"), or nobody on the writer's side able to work ("Ninguém aqui consegue abrir o painel").
MANY_PEOPLE = re.compile(
    r"(?<!\w)(?:[1-9]\d|[1-9]\d\d+)\s+(?:\w+\s+)?(?:agents?|people|users|employees|staff|colleagues|agent(?:en|innen)|"
    r"mitarbeiter\w*|kolleg\w*|personnes|utilisateurs|collaborateurs|agentes|usuari[oa]s|empleados|personas|"
    r"medewerkers|gebruikers|mensen|atendentes|usuários|pessoas|funcionários|colaboradores|persone|utenti|"
    r"operatori|colleghi)(?!\w)",
    re.IGNORECASE,
)
STOPPED = ("stuck", "locked out", "blocked", "cannot", "can't", "unable", "can not", "not able", "idle",
           "können nicht", "ausgesperrt", "gesperrt", "blockiert", "stehen still", "ne peuvent pas", "bloqués",
           "no pueden", "bloqueados", "parados", "kunnen niet", "zitten stil", "geblokkeerd", "não conseguem",
           "não podem", "paralisados", "non possono", "non riescono", "bloccati", "fermi")
NOBODY_CAN = re.compile(
    r"(?<!\w)(?:(?:nobody|no one|niemand|keiner|nadie|ninguém|nessuno)\s+"
    r"(?:(?:here|else|of us|in our team|on our team|hier|von uns|bei uns|aquí|de nosotros|van ons|aqui|de nós|qui|"
    r"di noi)\s+)?(?:can|could|is able|kann|konnte|puede|pudo|consegue|pode|kan|riesce|può)"
    r"|personne\s+(?:(?:ici|d'entre nous)\s+)?ne\s+(?:peut|parvient|arrive))(?!\w)",
    re.IGNORECASE,
)
# The writer says it can wait or is a small matter: low, whatever else the mail says ("not urgent, but the whole
# team sees it").
CALM = ("quick question", "just wondering", "no rush", "when you have time", "not urgent", "no hurry", "small thing",
        "not a big deal", "just a suggestion", "just curious", "out of curiosity", "nothing urgent",
        "minor issue", "minor thing", "minor but", "cosmetic", "just a typo", "kleinigkeit", "nur kosmetisch",
        "petit détail", "détail esthétique", "detalle menor", "kleinigheid", "detalhe pequeno", "piccolo dettaglio",
        "keine eile", "nicht dringend", "pas urgent", "pas pressé", "sin prisa", "no es urgente", "geen haast",
        "niet dringend", "sem pressa", "não é urgente", "non è urgente", "senza fretta")
# Asking how, whether, where: low, even beside a trouble word ("can I get a refund if it doesn't work for us?").
# Bare verbs that a negation also contains ("puedo" in "no puedo") only with the question mark that opens them.
LOW_PRIORITY = ("possible to", "is that possible", "is it possible", "is there", "is there a way", "are there",
                "do you", "does your", "how do i", "how can i", "how do we", "how can we", "where do i",
                "where can i", "can i", "can we", "could i", "would it be possible", "i was wondering",
                "wondering if", "do i need",
                "ist es möglich", "wäre es möglich", "gibt es", "kann ich", "können wir", "wie kann ich",
                "wo kann ich", "bieten sie",
                "est-il possible", "est-ce possible", "serait-il possible", "puis-je", "pouvons-nous", "y a-t-il",
                "comment puis-je", "proposez-vous",
                "es posible", "sería posible", "se puede", "¿puedo", "¿podemos", "¿tienen", "¿ofrecen",
                "cómo puedo", "dónde puedo",
                "is het mogelijk", "zou het mogelijk zijn", "hoe kan ik", "waar kan ik", "bieden jullie",
                "é possível", "seria possível", "como posso", "onde posso", "vocês têm", "vocês oferecem",
                "è possibile", "sarebbe possibile", "come posso", "dove posso", "offrite")
# A sentence that asks how, what, which, where, when or whether (not "can you ...": a request to act): a question
# about something that works is low.
ASKING = re.compile(
    r"^\W*(?:(?:hi|hello|hey|hallo|bonjour|hola|buenas|buenos días|hoi|goedemiddag|goedendag|oi|olá|"
    r"bom dia|boa tarde|ciao|salve|buongiorno)\W+)?"
    r"(?:(?!pouvez|pourriez|voulez|voudriez)\w+-(?:vous|nous|je|on)|"
    r"how|what|what's|which|where|when|do|does|is|are|will|can i|can we|could i|could we|"
    r"wie|was|welche[rsn]?|wo|wann|gibt|ist|sind|kann ich|können wir|muss|müssen|"
    r"comment|quel(?:le)?s?|où|quand|est-ce|combien|puis-je|pouvons-nous|faut-il|"
    r"cómo|como|qué|que|cuál|cuáles|dónde|cuándo|cuánto|cuántos|hay|puedo|podemos|se puede|"
    r"hoe|wat|welke|waar|wanneer|kan ik|kunnen we|moet|moeten|"
    r"qual|quais|onde|quando|quanto|posso|dá pra|"
    r"come|che|quale|dove|quanti|quanto|entro quanti|si può)(?!\w)",
    re.IGNORECASE,
)
# The writer cannot get in or get through: asking how is not a calm question then ("I'm stuck at the 2FA screen.
# How do I get back in?").
SHUT_OUT = ("stuck", "locked out", "no access", "lost access", "fehlgeschlagen", "kein zugang", "keinen zugang",
            "ausgesperrt", "plus accès", "bloqué", "bloquée", "sin acceso", "bloqueado", "bloqueada", "geen toegang",
            "buitengesloten", "sem acesso", "nessun accesso", "bloccato", "bloccata")
# The writer wishes for something the product does not do: a wish, whatever its category and whoever it is for.
WISHES = ("would be nice", "would be great", "would be handy", "would be cool", "would be helpful", "would love",
          "please add", "consider adding", "feature request",
          "wäre schön", "wäre toll", "wäre praktisch", "wäre hilfreich", "wünschen uns", "funktionswunsch",
          "ce serait pratique", "ce serait bien", "ce serait génial", "serait utile", "nous aimerions pouvoir",
          "sería útil", "sería genial", "estaría bien", "nos gustaría poder",
          "zou handig zijn", "zou fijn zijn", "zou mooi zijn", "zou het mogelijk worden",
          "seria ótimo", "seria bom", "seria útil", "gostaríamos de poder",
          "sarebbe utile", "sarebbe bello", "sarebbe comodo", "vorremmo poter")
# Something does not work, or works wrong: a question or wish that says so is no longer a calm one.
TROUBLE = ("cannot", "can't", "not working", "doesn't work", "does not work", "fails", "failed", "erro*", "blocked",
           "blocks", "still not", "still no", "still hasn't", "still haven't", "still doesn't", "still don't",
           "still can't", "still cannot", "still waiting", "still broken", "still shows", "still the same",
           "stopped", "won't", "unable", "crash*", "broken", "wrong", "not loading",
           "no longer", "freezes", "nothing happens",
           "funktioniert nicht", "nicht mehr", "kann nicht", "blockiert", "fehler*", "falsch*", "kaputt",
           "stürzt ab", "abgestürzt", "lädt nicht", "geht nicht",
           "ne fonctionne pas", "ne marche pas", "impossible", "bloque", "erreur*", "plante", "cassé",
           "ne charge pas", "ne s'affiche pas",
           "no funciona", "no puedo", "no podemos", "bloquea", "falla", "fallo", "roto", "no carga",
           "no aparece", "incorrecto", "ya no",
           "werkt niet", "kan niet", "blokkeert", "fout*", "kapot", "laadt niet", "verkeerd*", "niet meer",
           "lukt niet",
           "não funciona", "não consigo", "não posso", "bloqueia", "quebrado", "não carrega", "errado", "trava",
           "non funziona", "non riesco", "non posso", "rotto", "non carica", "sbagliato",
           # refused, stolen, shut out, never arrived, gone slow: the writer has a problem, not a question
           "stuck", "locked out", "lost access", "ausgesperrt", "buitengesloten", "declined", "rejected", "stolen",
           "no access", "not received", "haven't received", "never arrived",
           "where is my", "slow", "abgelehnt", "gestohlen", "kein zugang", "keinen zugang", "nicht erhalten",
           "nicht angekommen", "wo ist mein*", "langsam", "refusé*", "volé", "plus accès", "pas reçu",
           "jamais reçu", "où est mon", "où est ma", "trop lent*", "très lent*", "lenteur*", "rechazad*",
           "robad*", "sin acceso",
           "no he recibido", "no ha llegado", "dónde está mi", "lento", "lenta", "lentísim*", "geweigerd",
           "gestolen", "geen toegang", "niet ontvangen", "niet aangekomen", "waar is mijn", "traag", "recusad*",
           "roubad*", "sem acesso", "não recebi", "não chegou", "onde está", "rifiutat*", "rubat*",
           "nessun accesso", "non ho ricevuto", "non è arrivat*", "dov'è",
           "without notice", "without any notice", "without warning", "ohne vorwarnung", "ohne ankündigung",
           "sans prévenir", "sans préavis", "sin aviso", "sin previo aviso", "zonder aankondiging",
           "zonder waarschuwing", "sem aviso", "sem avisar", "senza preavviso", "senza avviso",
           # since an update; worked before; does nothing; comes out empty; defective
           "since the update", "after the update", "since the last release", "since the last update",
           "worked before", "used to work", "does nothing", "empty", "defective", "faulty",
           "seit dem update", "nach dem update", "seit dem letzten", "funktionierte", "tut nichts",
           "passiert nichts", "leer", "defekt*", "depuis la mise à jour", "après la mise à jour",
           "fonctionnait", "ne fait rien", "vide", "défectueu*", "desde la actualización",
           "después de la actualización", "funcionaba", "no hace nada", "vacío", "vacía", "defectuos*",
           "sinds de update", "na de update", "werkte", "doet niets", "leeg", "defect",
           "desde a atualização", "depois da atualização", "funcionava", "não faz nada", "vazio", "vazia",
           "defeituos*", "dall'aggiornamento", "dopo l'aggiornamento", "funzionava", "non fa niente",
           "non fa nulla", "vuoto", "vuota", "difettos*")
# Waiting on something for days ("for 9 days now", "al 12 dagen"): a problem too.
WAITING = re.compile(
    r"(?:for|since|seit|depuis|hace|desde|há|já|al|sinds|da)\s+(?:\w+\s+)?\d+\s+"
    r"(?:days|weeks|tage[n]?|wochen|jours|semaines|días|semanas|dagen|weken|dias|giorni|settimane)(?!\w)"
    r"|\d+\s+(?:days|weeks)\s+(?:now|already|ago)",
    re.IGNORECASE,
)
# Categories that are rarely urgent (questions, wishes, opinions): low unless a cue or a complaint says otherwise.
QUIET_CATEGORIES = frozenset(("technical", "sales", "feedback", "feature-request", "other"))
# A wish or an opinion is never an emergency: the urgency cues are not read in one ("to see urgent tickets at a
# glance", "thanks to the whole team").
WISH_CATEGORIES = frozenset(("feature-request", "feedback"))
# "not urgent", "no emergency": a high cue said not to apply is no cue; nor is an auto-reply's "for urgent matters".
NEGATED_HIGH = re.compile(
    r"\b(?:not|no|nothing|isn't|is not|wasn't|without|nicht|kein|keine|pas|niet|geen|no es|não é|non)\s+(?:\w+\s+)?"
    r"(?:urgent|critical|emergency|asap|dringend|urgente|eilig|spoed|emergencia|emergência|emergenza)\b"
    r"|\b(?:for|in)\s+urgent\s+(?:matters|cases|questions|issues)\b|\bin\s+dringenden\s+fällen\b",
    re.IGNORECASE,
)

NEGATIVE = ("angry", "unacceptable", "terrible", "still not", "frustrated", "frustrating", "disappointed",
            "ridiculous", "worst", "furious", "awful", "useless", "rude", "not professional", "complaint",
            "enttäuscht", "unverschämt", "inakzeptabel", "déçu", "inacceptable", "inaceptable", "maleducado",
            "mala experiencia", "queja", "teleurgesteld", "klacht", "niet professioneel", "insatisfação",
            "reclamação", "inaceitável")
POSITIVE = ("thanks", "thank you", "great", "love", "awesome", "excellent", "appreciate", "danke", "merci", "gracias")

# A few of each language's most common words; the language with the most hits wins, English when none do.
LANGUAGE_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("en", ("the", "and", "is", "my", "you", "please", "not", "with", "have", "this")),
    ("de", ("der", "die", "und", "ist", "nicht", "ich", "mein", "meine", "bitte", "mit", "wir", "das")),
    ("fr", ("le", "la", "les", "et", "est", "je", "mon", "ma", "pas", "vous", "merci", "une", "avec")),
    ("es", ("el", "los", "las", "y", "es", "mi", "por", "favor", "gracias", "una", "con", "pero", "que")),
    ("pt", ("não", "obrigado", "você", "meu", "minha", "está", "com", "uma")),
)
SCRIPT_LANGUAGES: tuple[tuple[str, str], ...] = (
    ("ja", r"[\u3040-\u30ff]"),  # hiragana, katakana: Japanese even when kanji dominate
    ("ko", r"[\uac00-\ud7af]"),
    ("zh", r"[\u4e00-\u9fff]"),
    ("ru", r"[\u0400-\u04ff]"),
    ("ar", r"[\u0600-\u06ff]"),
)
STOPWORDS = frozenset(("with", "that", "from", "this", "your", "have", "about", "into", "their", "they", "them",
                       "when", "what", "which", "other", "such", "also", "more", "than", "then", "issues",
                       "questions", "anything", "everything", "related", "including", "problems"))
# fmt: on

MIN_DESCRIPTION_WORD = 4
SUMMARY_LIMIT = 200
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[\u3002\uff01\uff1f])|\n\s*\n")  # CJK stops need no space
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


@cache
def _pattern(keyword: str) -> re.Pattern[str]:
    # Whole words; a trailing "s" lets "invoice" also match "invoices", a trailing "*" any ending ("refund*").
    if keyword.endswith("*"):
        return re.compile(rf"(?<!\w){re.escape(keyword[:-1])}", re.IGNORECASE)
    return re.compile(rf"(?<!\w){re.escape(keyword)}s?(?!\w)", re.IGNORECASE)


def _hits(text: str, keywords: Iterable[str]) -> list[str]:
    return [keyword for keyword in keywords if _pattern(keyword).search(text)]


def _words(text: str, keywords: Iterable[str]) -> list[str]:
    """The words of `text` the keywords matched ("refund*" → "refunded"), for the notes."""
    return list(dict.fromkeys(match.group(0).lower() for word in keywords if (match := _pattern(word).search(text))))


def _scored(subject: str, body: str, categories: Sequence[CategoryEntry]) -> list[tuple[str, list[str], int]]:
    """(category, its keywords found, score) per catalog entry: a keyword in the subject counts twice."""
    scored = []
    for entry in categories:
        hits = _hits(f"{subject}\n{body}", entry.keywords)
        scored.append((entry.name, hits, len(hits) + len(_hits(subject, hits))))
    return scored


def category_of(
    subject: str, body: str, categories: Sequence[CategoryEntry] = DEFAULT_CATEGORIES
) -> tuple[str, list[str]]:
    """The category whose keywords score most, a keyword in the subject counting twice (the catalog's order breaks
    ties), else "other"."""
    best, hits = _best(_scored(subject, body, categories))
    if best != FALLBACK_CATEGORY:
        return best, hits
    # No topic of its own: a wish is a feature request, a report that something does not work a bug.
    names = {entry.name for entry in categories}
    text = f"{subject}\n{body}"
    if "feature-request" in names and (wishes := _hits(text, WISHES)):
        return "feature-request", wishes
    if "bug" in names and (trouble := _trouble(text)):
        return "bug", trouble
    return best, hits


def _best(scored: list[tuple[str, list[str], int]]) -> tuple[str, list[str]]:
    best, best_hits, best_score = FALLBACK_CATEGORY, list[str](), 0
    for name, hits, score in scored:
        if score > best_score:
            best, best_hits, best_score = name, hits, score
    return best, best_hits


def _statements(text: str) -> str:
    """`text` without the sentences that ask how, whether or where ("Can I make two-factor mandatory for all
    agents?"): what they name is what the writer wants to know about, not what is happening."""
    kept = [
        sentence
        for sentence in _SENTENCE_END.split(text)
        if not (sentence.rstrip().endswith(("?", "\uff1f")) and _hits(sentence, LOW_PRIORITY))
    ]
    return "\n".join(kept)


def _trouble(text: str) -> list[str]:
    """The words of `text` that say something does not work (TROUBLE) or has kept the writer waiting (WAITING)."""
    found = _hits(text, TROUBLE)
    if match := WAITING.search(text):
        found.append(match.group(0))
    return found


def _asking(text: str) -> list[str]:
    """The question words of the sentences that ask for information (ASKING, ending in a question mark)."""
    for sentence in _SENTENCE_END.split(text):
        line = sentence.strip().splitlines()[-1] if sentence.strip() else ""
        if line.rstrip().endswith(("?", "\uff1f")) and (match := ASKING.search(line)):
            return [match.group(0).strip(" ¿¡")]
    return []


def _high(text: str) -> list[str]:
    """The urgency cues of `text` (not negated): said outright, or many people stopped."""
    said = NEGATED_HIGH.sub(" ", _statements(text))
    high = _hits(said, HIGH_PRIORITY)
    if match := NOBODY_CAN.search(said):
        high.append(match.group(0))
    for sentence in _SENTENCE_END.split(said):
        if (match := MANY_PEOPLE.search(sentence)) and _hits(sentence, STOPPED):
            return [*high, match.group(0)]
    return high


def priority_of(text: str, category: str = FALLBACK_CATEGORY) -> tuple[Priority, list[str]]:
    """Low when the writer says it can wait (CALM); high on an urgency cue (not negated, not in a question, none in
    a wish or an opinion) or many people stopped; low on a wish (WISHES), on a question (LOW_PRIORITY) unless the
    writer is shut out, and on a question for information (ASKING) that reports no trouble; else by category: a
    question, wish or opinion (QUIET_CATEGORIES) is low unless it complains or says that something is wrong or
    kept the writer waiting (TROUBLE, WAITING), anything else medium."""
    if calm := _hits(text, CALM):
        return "low", calm
    wishes = _hits(text, WISHES)
    if category not in WISH_CATEGORIES and not wishes and (high := _high(text)):
        return "high", high
    trouble = _trouble(text)
    if wishes and not trouble:
        return "low", wishes
    if (low := _hits(text, LOW_PRIORITY)) and not _hits(text, SHUT_OUT):
        return "low", low
    if (asks := _asking(text)) and not trouble:
        return "low", asks
    if category not in QUIET_CATEGORIES:
        return "medium", []
    if trouble:
        return "medium", trouble
    return ("medium" if sentiment_of(text) == "negative" else "low"), []


def sentiment_of(text: str) -> Sentiment:
    if _hits(text, NEGATIVE):
        return "negative"
    if _hits(text, POSITIVE):
        return "positive"
    return "neutral"


def language_of(text: str) -> str:
    for language, script in SCRIPT_LANGUAGES:
        if re.search(script, text):
            return language
    words = [word.lower() for word in _WORD.findall(text)]
    scores = [(sum(word in common for word in words), language) for language, common in LANGUAGE_WORDS]
    score, language = max(scores, key=lambda pair: pair[0])  # max keeps the first at a tie: English
    return language if score else "en"


def skills_of(text: str, catalog: Sequence[SkillInfo]) -> list[tuple[str, str]]:
    """(skill, the word that matched) for catalog entries whose name or a description word occurs in the text."""
    found: list[tuple[str, str]] = []
    for skill in catalog:
        words = [skill.name] + [
            word
            for word in _WORD.findall(skill.description)
            if len(word) >= MIN_DESCRIPTION_WORD and word.lower() not in STOPWORDS
        ]
        if hits := _hits(text, words):
            found.append((skill.name, hits[0]))
    return found


def summary_of(ticket: TicketText) -> str:
    """The body's first sentences that fit in 200 characters (the subject when the body is empty)."""
    text = ticket.body.strip() or ticket.subject
    summary = ""
    for sentence in _SENTENCE_END.split(text):
        candidate = f"{summary} {' '.join(sentence.split())}".strip()
        if len(candidate) > SUMMARY_LIMIT:
            break
        summary = candidate
    if summary:
        return summary
    flat = " ".join(text.split())
    return flat[: SUMMARY_LIMIT - 1].rsplit(" ", 1)[0] + "…"


@dataclass(frozen=True)
class Reading:
    """What the keyword tables find in a ticket, as numbers: the learned triage reads them beside the words."""

    scores: dict[str, int]  # category -> its keyword score
    category: str
    priority: Priority
    high: int  # urgency cues, not negated
    low: int  # calm cues
    trouble: int
    negative: bool


def reading(subject: str, body: str, categories: Sequence[CategoryEntry] = DEFAULT_CATEGORIES) -> Reading:
    text = f"{subject}\n{body}"
    scored = _scored(subject, body, categories)  # once: the scores and the category they give
    category, _hits_found = _best(scored)
    return Reading(
        scores={name: score for name, _found, score in scored},
        category=category,
        priority=priority_of(text, category)[0],
        high=len(_high(text)),
        low=len(_hits(text, CALM + LOW_PRIORITY)),
        trouble=len(_trouble(text)),
        negative=sentiment_of(text) == "negative",
    )


def _quoted(words: Iterable[str]) -> str:
    return ", ".join(f"'{word}'" for word in words)


def heuristic_triage(
    ticket: TicketText, catalog: Sequence[SkillInfo], categories: Sequence[CategoryEntry] = DEFAULT_CATEGORIES
) -> Triage:
    """Triage by keyword tables (the categories' keywords from the catalog); the notes say which keywords decided."""
    text = f"{ticket.subject}\n{ticket.body}"
    category, category_hits = category_of(ticket.subject, ticket.body, categories)
    priority, priority_hits = priority_of(text, category)
    skills = skills_of(text, catalog)
    notes = ["Keyword triage (no AI)."]
    if category_hits:
        notes.append(f"Category {category} from {_quoted(_words(text, category_hits))}.")
    else:
        notes.append("No category keyword.")
    if priority_hits:
        notes.append(f"Priority {priority} from {_quoted(_words(text, priority_hits))}.")
    if skills:
        notes.append("Skills: " + ", ".join(f"{name} ('{word}')" for name, word in skills) + ".")
    raw = Triage(
        category=category,
        priority=priority,
        skills=[name for name, _ in skills],
        summary=summary_of(ticket),
        helpful_notes=" ".join(notes),
        language=language_of(text),
        sentiment=sentiment_of(text),
    )
    return clamp(raw, catalog, categories)
