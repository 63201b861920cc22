//! Which resource types the sandbox serves, and what each supports: every resource type
//! of FHIR R4 (4.0.1). Practitioner and Appointment behave as their documents say (their
//! own modules); every other type is the generic in-memory store of
//! [`crate::sandbox::generic`]. The routes and the CapabilityStatement both read these
//! tables, so what `/metadata` declares is what the routes do.

use crate::sandbox::core::SearchParam;
use crate::sandbox::{appointment, generic, practitioner};

/// The 146 resource types of FHIR R4 4.0.1 (the `resource-types` value set without the
/// abstract Resource and DomainResource), in alphabetical order: the CapabilityStatement
/// order.
pub(crate) const R4_RESOURCE_TYPES: &[&str] = &[
    "Account",
    "ActivityDefinition",
    "AdverseEvent",
    "AllergyIntolerance",
    "Appointment",
    "AppointmentResponse",
    "AuditEvent",
    "Basic",
    "Binary",
    "BiologicallyDerivedProduct",
    "BodyStructure",
    "Bundle",
    "CapabilityStatement",
    "CarePlan",
    "CareTeam",
    "CatalogEntry",
    "ChargeItem",
    "ChargeItemDefinition",
    "Claim",
    "ClaimResponse",
    "ClinicalImpression",
    "CodeSystem",
    "Communication",
    "CommunicationRequest",
    "CompartmentDefinition",
    "Composition",
    "ConceptMap",
    "Condition",
    "Consent",
    "Contract",
    "Coverage",
    "CoverageEligibilityRequest",
    "CoverageEligibilityResponse",
    "DetectedIssue",
    "Device",
    "DeviceDefinition",
    "DeviceMetric",
    "DeviceRequest",
    "DeviceUseStatement",
    "DiagnosticReport",
    "DocumentManifest",
    "DocumentReference",
    "EffectEvidenceSynthesis",
    "Encounter",
    "Endpoint",
    "EnrollmentRequest",
    "EnrollmentResponse",
    "EpisodeOfCare",
    "EventDefinition",
    "Evidence",
    "EvidenceVariable",
    "ExampleScenario",
    "ExplanationOfBenefit",
    "FamilyMemberHistory",
    "Flag",
    "Goal",
    "GraphDefinition",
    "Group",
    "GuidanceResponse",
    "HealthcareService",
    "ImagingStudy",
    "Immunization",
    "ImmunizationEvaluation",
    "ImmunizationRecommendation",
    "ImplementationGuide",
    "InsurancePlan",
    "Invoice",
    "Library",
    "Linkage",
    "List",
    "Location",
    "Measure",
    "MeasureReport",
    "Media",
    "Medication",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationKnowledge",
    "MedicationRequest",
    "MedicationStatement",
    "MedicinalProduct",
    "MedicinalProductAuthorization",
    "MedicinalProductContraindication",
    "MedicinalProductIndication",
    "MedicinalProductIngredient",
    "MedicinalProductInteraction",
    "MedicinalProductManufactured",
    "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect",
    "MessageDefinition",
    "MessageHeader",
    "MolecularSequence",
    "NamingSystem",
    "NutritionOrder",
    "Observation",
    "ObservationDefinition",
    "OperationDefinition",
    "OperationOutcome",
    "Organization",
    "OrganizationAffiliation",
    "Parameters",
    "Patient",
    "PaymentNotice",
    "PaymentReconciliation",
    "Person",
    "PlanDefinition",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "Questionnaire",
    "QuestionnaireResponse",
    "RelatedPerson",
    "RequestGroup",
    "ResearchDefinition",
    "ResearchElementDefinition",
    "ResearchStudy",
    "ResearchSubject",
    "RiskAssessment",
    "RiskEvidenceSynthesis",
    "Schedule",
    "SearchParameter",
    "ServiceRequest",
    "Slot",
    "Specimen",
    "SpecimenDefinition",
    "StructureDefinition",
    "StructureMap",
    "Subscription",
    "Substance",
    "SubstanceNucleicAcid",
    "SubstancePolymer",
    "SubstanceProtein",
    "SubstanceReferenceInformation",
    "SubstanceSourceMaterial",
    "SubstanceSpecification",
    "SupplyDelivery",
    "SupplyRequest",
    "Task",
    "TerminologyCapabilities",
    "TestReport",
    "TestScript",
    "ValueSet",
    "VerificationResult",
    "VisionPrescription",
];

/// Who answers for a resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handler {
    /// The Canvas Practitioner API (seed 000), whose search is also the provider
    /// registry's (seed 003).
    Practitioner,
    /// The Canvas Appointment API (seeds 004, 001).
    Appointment,
    /// Every other R4 type: no document gives it rules of its own, so it gets FHIR R4's
    /// core interactions.
    Generic,
}

/// The handler of a resource type; `None` for a name that is not an R4 resource type.
pub(crate) fn handler(ty: &str) -> Option<Handler> {
    match ty {
        "Practitioner" => Some(Handler::Practitioner),
        "Appointment" => Some(Handler::Appointment),
        _ if R4_RESOURCE_TYPES.contains(&ty) => Some(Handler::Generic),
        _ => None,
    }
}

impl Handler {
    /// The CapabilityStatement interaction codes. The Canvas APIs document no delete.
    pub(crate) fn interactions(self) -> &'static [&'static str] {
        match self {
            Handler::Practitioner | Handler::Appointment => {
                &["read", "vread", "search-type", "create", "update"]
            }
            Handler::Generic => &[
                "read",
                "vread",
                "history-instance",
                "search-type",
                "create",
                "update",
                "delete",
            ],
        }
    }

    /// Whether a PUT to an id that does not exist creates the resource under that id
    /// (CapabilityStatement `updateCreate`); the Canvas APIs answer 404.
    pub(crate) fn update_creates(self) -> bool {
        self == Handler::Generic
    }

    /// The methods `/{type}/{id}` allows, for the Allow header of a 405.
    pub(crate) fn instance_methods(self) -> &'static str {
        match self {
            Handler::Practitioner | Handler::Appointment => "GET, PUT",
            Handler::Generic => "GET, PUT, DELETE",
        }
    }

    /// The search parameters of `ty` (this handler's type).
    pub(crate) fn search_params(self, ty: &str) -> &'static [SearchParam] {
        match self {
            Handler::Practitioner => practitioner::SEARCH_PARAMS,
            Handler::Appointment => appointment::SEARCH_PARAMS,
            Handler::Generic => generic::params_of(ty),
        }
    }
}

/// The methods `/{type}` allows (search and create, for every type served).
pub(crate) const TYPE_METHODS: &str = "GET, POST";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_r4_list_is_complete_sorted_and_without_abstract_types() {
        assert_eq!(R4_RESOURCE_TYPES.len(), 146);
        assert!(R4_RESOURCE_TYPES.windows(2).all(|w| w[0] < w[1]));
        for abstract_type in ["Resource", "DomainResource"] {
            assert!(handler(abstract_type).is_none());
        }
        assert_eq!(handler("Practitioner"), Some(Handler::Practitioner));
        assert_eq!(handler("Appointment"), Some(Handler::Appointment));
        assert_eq!(
            handler("ImmunizationRecommendation"),
            Some(Handler::Generic)
        );
        assert_eq!(handler("patient"), None);
    }
}
