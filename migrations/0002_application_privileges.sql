-- Application privileges (Elasticsearch's `PUT /_security/privilege`), one row each.
CREATE TABLE application_privileges (
    application TEXT NOT NULL,
    name TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (application, name)
);
