"""Baton's local IAM: evaluate requests against role and resource policies as AWS
does, the table of what each API call is authorised on, a recorder of decisions,
the mutation check of the template's grants, and the hook that makes moto enforce
it all (off unless BATON_LOCAL_IAM=enforce)."""
