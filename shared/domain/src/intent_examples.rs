//! The JSON examples of Intent's page "Intervention mère : Ouverture du dossier"
//! (`shared/seeds/`), byte for byte, for tests across the workspace; and a refusal at
//! reception, which the page does not show.

/// Réception d'une réclamation par le prestataire (open/acknowledged).
pub const SEED_OPENING: &str = r#"{
"reference": "INTER-0500",
"description": "Plus de chauffage dans le logement 2. Le locataire indique une température de 16°C",
"contractReference": "contract1",
"status": "open",
"event": "acknowledged",
"eventDate": "2020-03-06T10:45:23",
"logDate": "2020-03-06T10:45:26",
"serviceCode": "P902",
"location": {
"assetReference": "LOGEMENT_002"
},
"workType": "corrective",
"contacts": [
"BEGIN:VCARD\n\nVERSION:3\r\nFN;CHARSET=UTF-8:Pierre DUPONT\r\nN;CHARSET=UTF-8:DUPONT;Pierre\r\nTEL;TYPE=WORK,VOICE:0734220902\r\nTEL;TYPE=HOME,VOICE:0685874445\r\nADR;TYPE=WORK:165 Avenue de Bretagne;59000;LILLE;France\r\nROLE;CHARSET=UTF-8:Locataire\r\nEMAIL;CHARSET=UTF-8;TYPE=WORK,INTERNET:p.dupont@internet.fr\r\nEND:VCARD"
],
"criticalLevel": 3,
"visitAttempt": 1,
"equipmentWorkingOrder": "not_operational"
}"#;

/// Clôture de l'intervention totale (closed/done).
pub const SEED_CLOSURE_DONE: &str = r#"{
"reference": "INTER-0500",
"description": "Chauffage de nouveau opérationnel ! Remise en service du chauffage pour le locataire. Pb au niveau de la vanne d’arrivée. Prévoir un changement du matérielle dans l’année.",
"contractReference": "contract1",
"status": "closed",
"event": "done",
"eventDate": "2020-03-06T15:35:00",
"logDate": "2020-03-06T15:35:26",
"serviceCode": "P902",
"location": {
"assetReference": "LOGEMENT_002"
},
"workType": "corrective",
"criticalLevel": 3,
"visitAttempt": 1,
"equipmentWorkingOrder": "operational",
"equipmentStatus": "ok",
"occupantSignature": "ok"
}"#;

/// Clôture de l'intervention avec réparation "partielle" — as published, NOT valid JSON
/// (a stray `",` after the description).
pub const SEED_CLOSURE_PARTIAL_REPAIR_MALFORMED: &str = r#"{
"reference": "INTER-0500",
"description": "Remise en service incomplète, le prestataire de maintenance prend le relai",",
"contractReference": "contract1",
"status": "closed",
"event": "partial_repair",
"eventDate": "2020-03-06T15:35:00",
"logDate": "2020-03-06T15:35:26",
"serviceCode": "P902",
"location": {
"assetReference": "LOGEMENT_002"
},
"workType": "corrective",
"criticalLevel": 3,
"visitAttempt": 1,
"equipmentWorkingOrder": "operational",
"equipmentStatus": "ok",
"occupantSignature": "ok"
}"#;

/// The partial repair closure as the page meant it (the stray `",` removed).
pub const SEED_CLOSURE_PARTIAL_REPAIR: &str = r#"{
"reference": "INTER-0500",
"description": "Remise en service incomplète, le prestataire de maintenance prend le relai",
"contractReference": "contract1",
"status": "closed",
"event": "partial_repair",
"eventDate": "2020-03-06T15:35:00",
"logDate": "2020-03-06T15:35:26",
"serviceCode": "P902",
"location": {
"assetReference": "LOGEMENT_002"
},
"workType": "corrective",
"criticalLevel": 3,
"visitAttempt": 1,
"equipmentWorkingOrder": "operational",
"equipmentStatus": "ok",
"occupantSignature": "ok"
}"#;

/// A refusal at reception (`denied/canceled`), which the seed page does not show: the
/// same claim, refused five minutes after it was opened.
pub const CLOSURE_CANCELED: &str = r#"{
"reference": "INTER-0500",
"description": "Appel en doublon : le locataire a déjà un rendez-vous avec le mainteneur",
"contractReference": "contract1",
"status": "denied",
"event": "canceled",
"eventDate": "2020-03-06T10:50:00",
"logDate": "2020-03-06T10:50:02",
"serviceCode": "P902",
"location": {
"assetReference": "LOGEMENT_002"
},
"workType": "corrective"
}"#;
