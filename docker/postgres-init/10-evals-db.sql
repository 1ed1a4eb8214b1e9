-- Our tables live in a database of their own beside Airflow's metadata DB (runs once, on an empty volume).
CREATE DATABASE evals OWNER airflow;
