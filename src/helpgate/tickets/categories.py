"""The category catalog: what triage may file a ticket under (the AI reads the names and descriptions, the
keyword triage the keywords), managed by admins over the API and the command line.

A store starts with DEFAULTS (written once, at start-up, when it has no catalog yet). "other" is always a
category triage may use, listed or not: it is where a ticket goes when nothing fits. A category removed from the
catalog stays on the tickets that have it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from helpgate.audit import audit
from helpgate.core.errors import InvalidInput
from helpgate.core.naming import catalog_name
from helpgate.core.recent import Recent
from helpgate.models import AuditAction, Category, User
from helpgate.tickets import counters

log = logging.getLogger(__name__)

FALLBACK = "other"
MAX_CATEGORIES = 100
MAX_KEYWORDS = 100
SEEDED = "categories_seeded"  # a counter: the defaults were written once
RECENT_SECONDS = 10.0  # another instance's change to the catalog reaches triage here within this


@dataclass(frozen=True)
class CategoryEntry:
    name: str
    description: str = ""
    keywords: tuple[str, ...] = field(default_factory=tuple)


# fmt: off
# Keywords are whole words, case-insensitive; a plural "s" is allowed, and a trailing "*" takes any ending
# ("refund*": refunds, refunded). English first, then German, French, Spanish, Dutch, Portuguese and Italian.
DEFAULTS: tuple[CategoryEntry, ...] = (
    CategoryEntry("billing", "invoices, charges, refunds, payment methods, receipts and VAT of what the customer "
                  "already bought (prices and plans before buying are sales)",
                  ("invoice*", "refund*", "charge", "charged", "charges", "chargeback", "payment*", "billing",
                   "billed", "bill", "receipt*", "credit card", "card declined", "vat", "sales tax", "reverse charge",
                   "direct debit", "bank transfer", "sepa", "credit note", "prorated", "money back", "overcharged",
                   "paid", "unpaid", "currency",
                   "rechnung*", "abbuchung*", "abgebucht", "lastschrift*", "zahlung*", "erstatt*", "gutschrift*",
                   "factur*", "rembours*", "prélevé", "prélèvement*", "paiement*", "tva",
                   "reembolso*", "cobro*", "cobrado", "cargo*", "pago*", "iva",
                   "factuur", "facturen", "afgeschreven", "terugstorten", "creditnota", "betaling*",
                   "fatura*", "cobrança*", "pagamento*", "boleto", "nif", "fattura*", "rimborso*", "addebit*")),
    CategoryEntry("technical", "how to set up, configure, integrate or use the product: mailboxes, domains, DNS, "
                  "SSO, the API and webhooks, imports (something that should work and does not is a bug)",
                  ("how do i", "how to", "how can i", "set up", "setup", "configure", "configuration", "integrate",
                   "integration", "api", "webhook*", "sdk", "dns", "cname", "spf", "dkim", "sso", "saml", "ldap",
                   "scim", "custom domain", "firewall", "ip ranges", "whitelist", "allowlist", "proxy", "zapier",
                   "import", "importing", "migration", "migrate", "endpoint", "rate limit", "forwarding", "mailbox",
                   "automation", "rule", "widget", "plugin", "sandbox", "staging",
                   "einrichten", "einrichtung", "konfigur*", "schnittstelle", "anbindung", "weiterleitung",
                   "configurer", "paramétrer", "intégrer", "intégration", "comment",
                   "configurar", "configuración", "integrar", "integración", "cómo",
                   "instellen", "koppelen", "koppeling", "hoe", "integração", "configuração", "como configurar")),
    CategoryEntry("bug", "something in the product that should work and does not: errors, crashes, wrong "
                  "results, things that stopped working or broke after an update",
                  ("error*", "crash*", "bug", "not working", "doesn't work", "does not work", "stopped working",
                   "broken", "500", "502", "503", "404", "fail*", "exception", "traceback",
                   "stack trace", "freezes", "blank page", "white page", "corrupted", "not loading", "won't load",
                   "nothing happens", "since the update", "after the update", "since the last update", "down",
                   "anymore", "no longer", "stopped", "worked", "slow", "breaks", "broke", "data loss",
                   "lost data", "disappeared", "vulnerability", "xss", "exposed",
                   "fehler*", "absturz", "stürzt", "funktioniert nicht", "nicht mehr", "kaputt", "langsam",
                   "erreur*", "plante", "ne fonctionne pas", "ne marche pas", "ne fait rien",
                   "falla", "fallo", "no funciona", "se cierra", "no carga", "lenta", "lento",
                   "fout", "foutmelding", "werkt niet", "crasht", "niet meer",
                   "erro", "não funciona", "fecha sozinho", "não carrega", "trava", "non funziona")),
    CategoryEntry("account", "logging in, passwords, two-factor, locked, hacked or deleted accounts, users, roles "
                  "and access (a login that fails for everyone after an update is a bug)",
                  ("password*", "login", "log in", "sign in", "signed in", "2fa", "two-factor", "authenticator",
                   "mfa", "account locked", "locked", "locked out", "reset link", "username", "delete my account",
                   "close my account", "account", "my account", "permission*", "admin rights", "role", "roles",
                   "invite", "verification email", "hacked", "compromised", "ownership", "deactivate*", "access",
                   "passwort", "konto", "anmelden", "einloggen", "zwei-faktor*", "gesperrt", "zugang",
                   "mot de passe", "mon compte", "compte", "connexion", "verrouillé", "débloquer",
                   "contraseña", "cuenta", "iniciar sesión", "bloqueada", "desbloquear",
                   "wachtwoord", "inloggen", "gebruiker*", "senha", "conta", "acesso", "accesso")),
    CategoryEntry("shipping", "deliveries, parcels, tracking, couriers, customs and returns of goods",
                  ("delivery", "deliver", "delivered", "tracking", "parcel", "package", "shipping", "shipment",
                   "shipped", "ship", "courier", "dhl", "ups", "fedex", "customs", "return label", "return",
                   "my order", "arrived", "pick-up",
                   "lieferung*", "lieferzeit", "paket*", "sendung*", "versand*", "zugestellt", "rücksendung",
                   "retoure*", "bestellung*",
                   "livraison", "livré", "livrez", "colis", "expédition", "expédié", "commande", "retour",
                   "envío*", "pedido*", "entrega", "llegado", "seguimiento", "devolver", "paquete",
                   "pakket*", "levering", "geleverd", "bezorg*", "bestelling*", "verzend*", "retour*",
                   "track & trace", "postnl",
                   "encomenda*", "frete", "rastreio", "pacote", "spedizione", "ordine", "consegna", "tracciamento")),
    CategoryEntry("sales", "prices, quotes, plans, upgrades, trials, licences and contracts before or beyond a "
                  "purchase (paying for what was bought is billing)",
                  ("pricing", "price", "quote", "demo", "plan upgrade", "upgrade", "enterprise", "discount*",
                   "license*", "licence*", "seats", "trial", "purchase order", "reseller", "partner program",
                   "volume", "contract", "per agent", "how much", "procurement", "startup programme", "buy*",
                   "angebot", "preis*", "tarif*", "rabatt", "lizenz*", "testphase", "kaufen", "was kostet",
                   "devis", "prix", "remise*", "revendeur*", "essai", "combien",
                   "precio*", "presupuesto", "descuento*", "prueba gratuita", "licencia*", "cuánto cuesta",
                   "offerte", "prijs", "korting", "wat kost",
                   "orçamento", "preço*", "licença*", "licenças", "desconto")),
    CategoryEntry("feedback", "praise and complaints about the product or the service, opinions (asking for "
                  "something new is a feature request)",
                  ("thanks to", "thanks for the", "thank you so much", "want to thank", "wanted to thank",
                   "wanted to say", "just wanted", "compliment*", "feedback", "love the", "excellent", "amazing",
                   "disappointed", "complaint", "unhappy", "terrible", "opinion", "survey", "kudos", "well done",
                   "great job", "great support", "great service", "rude", "useless", "frustrating",
                   "bedanken", "zufrieden", "kritik", "beschwerde", "weiter so",
                   "un grand merci", "merci à", "bravo", "félicitations", "réclamation", "plainte", "déçu",
                   "queja", "felicidades", "complimenten", "klacht",
                   "muito obrigado", "reclamação", "insatisfação", "parabéns", "complimenti", "ottimo")),
    CategoryEntry("feature-request", "something the product does not do yet that the customer asks for "
                  "(a feature that exists but fails is a bug)",
                  ("feature request", "feature", "would be nice", "would love", "would be great", "could you add",
                   "please add", "could be added", "be added", "consider adding", "would you consider",
                   "please support", "suggestion", "idea", "wish", "roadmap", "any plans", "is it planned", "planned",
                   "funktionswunsch", "wäre es möglich", "wäre toll", "vorschlag", "einbauen", "geplant",
                   "serait-il possible", "ajouter", "idée", "prévu",
                   "sugerencia", "añadir", "previsto",
                   "suggestie", "verzoek", "zou handig zijn", "zou fijn zijn", "toevoegen", "op de planning",
                   "sugestão", "seria ótimo", "adicionar")),
    CategoryEntry(FALLBACK, "anything that fits no other category: job applications, press, partnerships, "
                  "advertising, out-of-office and bounced mail",
                  ("job application", "cv", "careers", "journalist", "press", "interview", "sponsored",
                   "partnership", "collaboration", "out of office", "undeliverable", "seo", "donation", "phishing",
                   "bewerbung", "presse", "journaliste", "samenwerking")),
)
# fmt: on


def normalise(name: str) -> str:
    """A category's name as stored; InvalidInput for one that cannot be (core/naming.py)."""
    return catalog_name(name, what="category")


async def catalog() -> list[Category]:
    """The catalog in its order."""
    return await Category.find({}).sort("rank", "name").to_list()


_RECENT = Recent(catalog, seconds=RECENT_SECONDS)


def _database() -> str:
    return str(Category.get_pymongo_collection().database.name)


async def for_triage() -> list[Category]:
    """The catalog as triage reads it: from the store at most every RECENT_SECONDS (one read less per ticket)."""
    return await _RECENT.get(_database())


async def ensure_defaults() -> None:
    """Write DEFAULTS once, for a store that has never had a catalog (at start-up); an admin's catalog, even an
    emptied one, is never touched."""
    if await counters.current(SEEDED) >= 1:
        return
    if await Category.find_one({}) is None:
        await _write(list(DEFAULTS))
        log.info("categories.seeded count=%d", len(DEFAULTS))
    await counters.increment(SEEDED)


async def replace(entries: Sequence[CategoryEntry], *, actor: User | str | None) -> list[Category]:
    """Make the catalog exactly `entries`, in that order (names normalised, duplicates refused), audited as
    `actor` (None: a store seeded for tests or benchmarks). Tickets keep the categories they have."""
    if len(entries) > MAX_CATEGORIES:
        raise InvalidInput(f"at most {MAX_CATEGORIES} categories")
    checked: list[CategoryEntry] = []
    for entry in entries:
        name = normalise(entry.name)
        if name in {each.name for each in checked}:
            raise InvalidInput(f"category {name!r} is listed twice")
        keywords = tuple(dict.fromkeys(word.strip().lower() for word in entry.keywords if word.strip()))
        if len(keywords) > MAX_KEYWORDS:
            raise InvalidInput(f"category {name!r}: at most {MAX_KEYWORDS} keywords")
        checked.append(CategoryEntry(name, entry.description.strip()[:500], keywords))
    # One unit: the entry (pending), the catalog, then the confirmation (a catalog is its own mark).
    pending = await audit.begin_catalog(
        actor=actor,
        action=AuditAction.CATEGORIES_REPLACED,
        catalog="categories",
        names=[each.name for each in checked],
    )
    await _write(checked)
    _RECENT.forget(_database())
    replaced = await catalog()
    log.info("categories.replaced count=%d", len(replaced))
    if pending is not None:
        await audit.confirm(pending)
    return replaced


async def _write(entries: Sequence[CategoryEntry]) -> None:
    collection = Category.get_pymongo_collection()
    await collection.delete_many({"name": {"$nin": [entry.name for entry in entries]}})
    for rank, entry in enumerate(entries):
        await collection.update_one(
            {"name": entry.name},
            {"$set": {"description": entry.description, "keywords": list(entry.keywords), "rank": rank}},
            upsert=True,
        )
