"""Fine-tuning on OpenAI or the embedded local backend, through the openai SDK only.

Public API (the Fine-tune tab and `python -m pipeline finetune` call these):
    start_job(client, train, model, *, validation=..., n_epochs=..., ...) -> Started   (session)
    check_and_preflight(client, train, model, ...) -> Preflight                       (session)
    preflight(train, model, ...) -> Preflight; require_ready(pre, confirmed=...)       (preflight)
    offered_base_models(client, openai_hosted=...) -> list[str]                        (preflight)
    upload_examples / create_job / list_jobs / retrieve_job / cancel_job /
    list_checkpoints / new_events / result_csv / job_error_message                     (jobs)
    watch_job(client, job_id, previous=None) -> JobSnapshot                            (watch)
    rows_from_events / rows_from_csv / loss_frame / metrics_frame / smooth             (metrics)
    record_job / recorded_jobs / known_jobs / remember / visitor_tag                   (records)
"""
