-- Our reports live in their own database, beside Temporal's.
CREATE USER postmortem WITH PASSWORD 'postmortem';
CREATE DATABASE postmortem OWNER postmortem;
