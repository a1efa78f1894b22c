"""The room database of the proctor box: every table the box alone keeps.

Times are float epoch seconds of the box clock. JSON columns hold plain data."""

from __future__ import annotations

from peewee import (
    BlobField,
    BooleanField,
    CharField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    TextField,
)

from kiosk.common.models import Answer, BaseModel


class RoomConfig(BaseModel):
    """The single row of room parameters (wizard step 1)."""

    room_code = CharField(max_length=10)
    site_mode = BooleanField(default=False)
    site_ip = CharField(default="")
    registration_code = CharField(default="")
    box_ip = CharField(default="")
    answer_dir = TextField()
    saved_at = FloatField()


class SiteTrust(BaseModel):
    """The exam site's certificate, pinned from a room sheet whose proof held for the
    room's registration code (schema 2); one row."""

    site_code = CharField()
    site_name = CharField(default="")
    site_ip = CharField(default="")
    fingerprint = CharField()
    cert_pem = TextField()
    issued_at = FloatField()
    loaded_at = FloatField()


class StoredFile(BaseModel):
    """A file of an operation task's answer kept in the answer folder (schema 4), with
    the hash checked when it arrived: the results list it without reading it again."""

    admission_no = CharField(max_length=32)
    session = IntegerField()
    subject = CharField(max_length=32)
    question = CharField(max_length=64)
    name = CharField(max_length=128)
    size = IntegerField()
    sha256 = CharField(max_length=64)

    class Meta:
        indexes = ((("admission_no", "subject", "question", "name"), True),)


class User(BaseModel):
    username = CharField(unique=True)
    name = CharField(default="")
    phone = CharField(default="")
    password_hash = TextField()
    default_password = BooleanField(default=True)
    failures = TextField(default="[]")  # JSON list of failure times since the last success


class Seat(BaseModel):
    number = IntegerField(unique=True)
    ip = CharField(unique=True)
    hostname = CharField(default="")
    mac = CharField(default="")
    os = CharField(default="")
    fingerprint = CharField(default="")
    daemon_version = CharField(default="")
    note = CharField(default="")
    online = BooleanField(default=False)
    last_seen = FloatField(null=True)


class EnvRun(BaseModel):
    started_at = FloatField()
    finished_at = FloatField(null=True)
    retest = BooleanField(default=False)
    requirements = TextField()  # JSON


class EnvResult(BaseModel):
    run = ForeignKeyField(EnvRun, backref="results", on_delete="CASCADE")
    seat_number = IntegerField()
    ip = CharField()
    checked_at = FloatField()
    report = TextField()  # JSON, as the PC sent it
    items = TextField()  # JSON, judged items
    passed = BooleanField()


class Exam(BaseModel):
    """The loaded exam package (wizard step 4); one row."""

    name = CharField()
    site_code = CharField()
    site_name = CharField(default="")
    room_code = CharField()
    policy = TextField()  # JSON of core.policy.Policy
    site_secret = BlobField()  # verifies authorisation codes offline
    package_key = BlobField(default=b"")  # the room's answer-package key (schema 3)
    violation_codes = TextField()  # JSON [[code, text], ...]
    situation_types = TextField()  # JSON [text, ...]
    staff = TextField()  # JSON [{role, name, phone}, ...]
    requirements = TextField(default="{}")  # JSON of core.envcheck.Requirements overrides
    package_sha256 = CharField()
    loaded_at = FloatField()


class Subject(BaseModel):
    code = CharField(unique=True)
    name = CharField()
    duration_s = IntegerField()
    kind = CharField(default="theory")


class Session(BaseModel):
    number = IntegerField(unique=True)
    name = CharField()
    scheduled_start = FloatField()
    authorised_at = FloatField(null=True)
    entered_at = FloatField(null=True)
    admin_name = CharField(default="")
    admin_phone = CharField(default="")
    invigilator_name = CharField(default="")
    invigilator_phone = CharField(default="")
    login_allowed_at = FloatField(null=True)
    start_allowed_at = FloatField(null=True)
    actual_start = FloatField(null=True)
    auto_login = BooleanField(default=False)
    auto_answer = BooleanField(default=False)
    ended_at = FloatField(null=True)
    backed_up_at = FloatField(null=True)
    uploaded_at = FloatField(null=True)


class Paper(BaseModel):
    session = ForeignKeyField(Session, backref="papers", on_delete="CASCADE")
    subject = ForeignKeyField(Subject, on_delete="CASCADE")
    questions = TextField()  # JSON list of questions
    question_count = IntegerField()


class SessionAuthorisation(BaseModel):
    session = ForeignKeyField(Session, unique=True, on_delete="CASCADE")
    key = BlobField()
    valid_from = FloatField()
    valid_until = FloatField()
    imported_at = FloatField()


class Candidate(BaseModel):
    admission_no = CharField(max_length=32, unique=True)
    session = ForeignKeyField(Session, backref="candidates", on_delete="CASCADE")
    seq = IntegerField()
    name = CharField()
    gender = CharField(default="")
    id_type = CharField(default="")
    id_number = CharField(default="")
    subjects = TextField()  # JSON list of subject codes
    photo = BlobField(null=True)
    state = CharField(default="not_logged_in", index=True)
    seat_number = IntegerField(null=True)
    ip = CharField(default="")
    online = BooleanField(default=False)
    locked = BooleanField(default=False)
    resume_pending = BooleanField(default=False)
    extra_s = IntegerField(default=0)
    logged_in_at = FloatField(null=True)
    began_at = FloatField(null=True)
    submitted_at = FloatField(null=True)
    collected = BooleanField(default=False)
    package_state = CharField(default="none")
    hand_raised_at = FloatField(null=True)


class OfflineInterval(BaseModel):
    """A stretch of lost link while a candidate was logged in on a seat."""

    candidate = ForeignKeyField(Candidate, backref="offline", on_delete="CASCADE")
    lost_at = FloatField()
    back_at = FloatField(null=True)


class Violation(BaseModel):
    candidate = ForeignKeyField(Candidate, backref="violations", on_delete="CASCADE")
    code = CharField()
    text = TextField()
    description = TextField(default="")
    registered_at = FloatField()
    cancelled_at = FloatField(null=True)


class Resume(BaseModel):
    candidate = ForeignKeyField(Candidate, backref="resumes", on_delete="CASCADE")
    situation = CharField()
    description = TextField()
    handler = CharField()
    seat_number = IntegerField(null=True)
    ip = CharField(default="")
    code = CharField(default="")
    created_at = FloatField()


class ExtraTime(BaseModel):
    candidate = ForeignKeyField(Candidate, backref="extra_grants", on_delete="CASCADE")
    requested_s = IntegerField()
    granted_s = IntegerField()
    total_after_s = IntegerField()
    reason = TextField(default="")
    code = CharField(default="")
    created_at = FloatField()


class Absence(BaseModel):
    candidate = ForeignKeyField(Candidate, unique=True, on_delete="CASCADE")
    subjects = TextField()  # JSON list
    created_at = FloatField()


class Challenge(BaseModel):
    """A challenge (申请码) the box showed for an authorisation code; used once."""

    purpose = CharField()
    session_number = IntegerField()
    subject_key = CharField(default="")  # admission number, or "" for the whole room
    challenge = CharField()
    created_at = FloatField()
    used_at = FloatField(null=True)
    failures = IntegerField(default=0)  # wrong codes tried against it


class UsedCode(BaseModel):
    code = CharField(unique=True)
    purpose = CharField()
    session_number = IntegerField()
    challenge = CharField()
    amount = IntegerField(default=0)
    admission_no = CharField(default="")
    used_at = FloatField()


class ImportedPackage(BaseModel):
    kind = CharField()
    sha256 = CharField()
    name = CharField(default="")
    imported_at = FloatField()
    summary = TextField(default="{}")

    class Meta:
        indexes = ((("kind", "sha256"), True),)


class SealResult(BaseModel):
    checked_at = FloatField()
    passed = BooleanField()
    items = TextField()  # JSON
    reported_at = FloatField(null=True)


class Event(BaseModel):
    """Append-only audit log; each row carries the hash of the one before it."""

    ts = FloatField()
    operator = CharField(default="")
    ip = CharField(default="")
    seat = IntegerField(null=True)
    admission_no = CharField(default="", index=True)
    kind = CharField(index=True)
    payload = TextField(default="{}")
    prev_hash = CharField()
    hash = CharField()


BOX_MODELS = (
    RoomConfig,
    StoredFile,
    User,
    Seat,
    EnvRun,
    EnvResult,
    Exam,
    Subject,
    Session,
    Paper,
    SessionAuthorisation,
    Candidate,
    OfflineInterval,
    Violation,
    Resume,
    ExtraTime,
    Absence,
    Challenge,
    UsedCode,
    ImportedPackage,
    SealResult,
    Event,
    Answer,
    SiteTrust,
)
